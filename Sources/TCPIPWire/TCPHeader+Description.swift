extension TCPHeader: CustomStringConvertible {
    /// tcpdump's notation with absolute numbers and no payload, e.g.
    /// `Flags [S.], seq 100, ack 200, win 65535, options [mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7], length 0`.
    public var description: String { description(payloadLength: 0) }

    /// tcpdump's notation for this header carrying `payloadLength` octets.
    ///
    /// Sequence and acknowledgment numbers are printed relative to `sequenceBase` and `acknowledgmentBase`
    /// (wrapping), as tcpdump prints them relative to the ISNs; SACK blocks are relative to
    /// `acknowledgmentBase`, since they name octets in the acknowledgment's space. Like tcpdump, "seq" is
    /// left out for a segment with no payload and no SYN, FIN or RST, and "ack" when ACK is not set:
    ///
    ///     Flags [P.], seq 1:1025, ack 1, win 512, options [nop,nop,TS val 5 ecr 4], length 1024
    ///     Flags [.], ack 1025, win 0, length 0
    public func description(payloadLength: Int, sequenceBase: UInt32 = 0, acknowledgmentBase: UInt32 = 0) -> String {
        var text = "Flags [\(flags)]"
        let sequence = sequenceNumber.rawValue &- sequenceBase
        if payloadLength > 0 || !flags.isDisjoint(with: [.syn, .fin, .rst]) {
            text += ", seq \(sequence)"
            if payloadLength > 0 {
                text += ":\(sequence &+ UInt32(truncatingIfNeeded: payloadLength))"
            }
        }
        if flags.contains(.ack) {
            text += ", ack \(acknowledgmentNumber.rawValue &- acknowledgmentBase)"
        }
        text += ", win \(window)"
        if flags.contains(.urg) {
            text += ", urg \(urgentPointer)"
        }
        if options.encodedLength > 0 {
            text += ", options [\(optionsDescription(acknowledgmentBase: acknowledgmentBase))]"
        }
        text += ", length \(payloadLength)"
        return text
    }

    /// The options in the order and padding they are encoded with, as tcpdump lists them.
    private func optionsDescription(acknowledgmentBase: UInt32) -> String {
        var parts: [String] = []
        if let mss = options.maximumSegmentSize {
            parts.append("mss \(mss)")
        }
        if let timestamps = options.timestamps {
            if options.sackPermitted {
                parts.append("sackOK")
            } else {
                parts.append(contentsOf: ["nop", "nop"])
            }
            parts.append("TS val \(timestamps.value) ecr \(timestamps.echoReply)")
        } else if options.sackPermitted {
            parts.append(contentsOf: ["nop", "nop", "sackOK"])
        }
        if let windowScale = options.windowScale {
            parts.append(contentsOf: ["nop", "wscale \(windowScale)"])
        }
        let blocks = options.sackBlocksThatFit(after: options.fixedLength)
        if blocks > 0 {
            var sack = "sack \(blocks) "
            for block in options.sackBlocks.prefix(blocks) {
                sack += "{\(block.start.rawValue &- acknowledgmentBase):\(block.end.rawValue &- acknowledgmentBase)}"
            }
            parts.append(contentsOf: ["nop", "nop", sack])
        }
        return parts.joined(separator: ",")
    }
}
