import NIOCore
import TCPIPWire

/// A segment as SEGMENT ARRIVES sees it: the parsed header and the payload slice.
struct IncomingSegment {
    var header: TCPHeader
    var payload: ByteBuffer
    /// Whether the segment still carries its SYN / FIN after trimming to the window.
    var syn: Bool
    var fin: Bool
    /// The ECN field of the IP header it came in (RFC 3168 §5).
    var ecn: ECNCodepoint

    init(header: TCPHeader, payload: ByteBuffer, ecn: ECNCodepoint = .notECT) {
        self.header = header
        self.payload = payload
        self.ecn = ecn
        self.syn = header.flags.contains(.syn)
        self.fin = header.flags.contains(.fin)
    }

    /// SEG.SEQ: after trimming, the sequence number of the first octet still in the segment.
    var seq: SequenceNumber {
        get { header.sequenceNumber }
        set { header.sequenceNumber = newValue }
    }
    /// SEG.ACK
    var ack: SequenceNumber { header.acknowledgmentNumber }
    var flags: TCPFlags { header.flags }
    /// SEG.LEN: octets of sequence space, SYN and FIN included (RFC 9293 §3.4).
    var length: UInt32 { UInt32(payload.readableBytes) + (syn ? 1 : 0) + (fin ? 1 : 0) }
    /// The sequence number just past this segment.
    var end: SequenceNumber { seq + length }
}
