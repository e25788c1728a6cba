/// One connection as `ss -ti` shows it: a summary line, then the TCP internals as `name:value`
/// fields, wrapped to the terminal's width.
///
///     ESTABLISHED 0 262144 198.18.0.1:49233 198.18.0.2:5001
///         ts sack newreno wscale:0,7 rto:200 rtt:10.041/2.510 mss:1460 rcvmss:1460
///         cwnd:10 bytes_acked:8193 bytes_received:0 retrans:0 timeouts:0 snd_wnd:0
///         rcv_wnd:65535 zero_window_probes:3 zero_window_adverts:0
///
/// Units are ss's: times in milliseconds, cwnd and ssthresh in segments, the rest in bytes.
/// `wscale` is the send shift (the peer's) then the receive shift (ours), as in ss.
public struct SocketStatistics: Hashable, Sendable {
    /// The connection's status, shown.
    public var status: ConnectionStatus

    /// The statistics line of `status`.
    public init(_ status: ConnectionStatus) {
        self.status = status
    }

    /// `State Recv-Q Send-Q Local Peer`, as ss's first line per socket.
    public var summaryLine: String {
        "\(status.state.rfcName) \(status.receiveQueue) \(status.sendQueue) \(status.local) \(status.remote)"
    }

    /// The `-i` fields, in ss's order where ss has them.
    public var detailFields: [String] {
        var fields: [String] = []
        if status.timestamps { fields.append("ts") }
        if status.sack { fields.append("sack") }
        fields.append(status.congestionControl)
        fields.append("wscale:\(status.sendWindowScale),\(status.receiveWindowScale)")
        fields.append("rto:\(TextFormat.milliseconds(status.retransmissionTimeout, digits: 0))")
        if let srtt = status.smoothedRTT {
            fields.append("rtt:\(TextFormat.milliseconds(srtt))/\(TextFormat.milliseconds(status.rttVariance))")
        }
        fields.append("mss:\(status.maximumSegmentSize)")
        fields.append("rcvmss:\(status.receiveMSS)")
        let mss = max(status.maximumSegmentSize, 1)
        fields.append("cwnd:\(status.congestionWindow / mss)")
        // ss leaves ssthresh out while it is still "infinite" (before the first loss).
        if status.slowStartThreshold < Int(Int32.max) {
            fields.append("ssthresh:\(status.slowStartThreshold / mss)")
        }
        if status.inRecovery { fields.append("recovery") }
        fields.append("bytes_acked:\(status.bytesAcked)")
        fields.append("bytes_received:\(status.bytesReceived)")
        fields.append("retrans:\(status.retransmits)")
        fields.append("timeouts:\(status.timeouts)")
        fields.append("snd_wnd:\(status.sendWindow)")
        fields.append("rcv_wnd:\(status.receiveWindow)")
        if status.autotuning {
            // Autotuning's state, as ss's rcv_space: and rcv_rtt:, and the buffers now/maximum
            // (shown only where they can grow, so fixed-buffer output reads as before).
            fields.append("rcv_space:\(status.receiveSpace)")
            if let receiveRTT = status.receiveRTT { fields.append("rcv_rtt:\(TextFormat.milliseconds(receiveRTT))") }
            fields.append("rcvbuf:\(status.receiveBuffer)/\(status.receiveBufferMaximum)")
            fields.append("sndbuf:\(status.sendBuffer)/\(status.sendBufferMaximum)")
        }
        if status.outOfOrderBytes > 0 { fields.append("ooo_bytes:\(status.outOfOrderBytes)") }
        // Loss-recovery fields appear once there is something to say, as ss's sacked:/lost:/reord_seen:.
        if status.sackedSegments > 0 { fields.append("sacked:\(status.sackedSegments)") }
        if status.lostBytes > 0 { fields.append("lost:\(status.lostBytes / mss)") }
        if status.reorderingSeen { fields.append("reord_seen") }
        if status.tailLossProbes > 0 { fields.append("tlp:\(status.tailLossProbes)") }
        if status.dsacksReceived > 0 { fields.append("dsack_dups:\(status.dsacksReceived)") }
        if status.spuriousRetransmissionsUndone > 0 { fields.append("undo:\(status.spuriousRetransmissionsUndone)") }
        fields.append("zero_window_probes:\(status.zeroWindowProbes)")
        fields.append("zero_window_adverts:\(status.zeroWindowAdvertisements)")
        if let error = status.error { fields.append("error:\(error)") }
        return fields
    }

    /// The summary line, then the fields indented by `indent` spaces and wrapped at `width` columns.
    public func lines(width: Int = 80, indent: Int = 4) -> [String] {
        let margin = String(repeating: " ", count: indent)
        var lines = [summaryLine]
        var current = ""
        for field in detailFields {
            if current.isEmpty {
                current = margin + field
            } else if current.count + 1 + field.count <= width {
                current += " " + field
            } else {
                lines.append(current)
                current = margin + field
            }
        }
        if !current.isEmpty { lines.append(current) }
        return lines
    }
}
