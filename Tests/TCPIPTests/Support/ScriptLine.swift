import NIOCore
import TCPIPScript
import TCPIPWire

/// One packet line of a packetdrill-like script: `+0.1 < P. 1:1001(1000) ack 1 win 65535 <nop,nop,TS val 5 ecr *>`,
/// read by `TCPIPScript`'s parser (the one the script runner uses) and put the way `TCPTester` plays it.
///
/// What the tester reads differently from a packetdrill script:
/// - no `<...>` on an outbound line leaves the options unchecked (packetdrill: "carries no options");
///   `<>` checks that there are none;
/// - `*` may stand for the value or echo of `TS` (match anything, or, inbound for `ecr`, echo the
///   stack's latest TSval);
/// - sequence numbers are relative to the sender's initial sequence number, acknowledgment numbers
///   and SACK blocks to the receiver's (the tester applies them), as packetdrill and tcpdump print them.
///   Timestamps are absolute.
///
/// Lines the tester cannot play (system calls, IP fields, urgent pointer, other options) are errors.
struct ScriptLine: Hashable, Sendable {
    /// `<`: the remote peer sends, the stack receives; `>`: the stack sends, the remote peer receives.
    typealias Direction = ScriptPacket.Direction

    /// When the event happens: `+0.1` relative to the previous event, `0.1` since the script
    /// began, `+0.2~+0.3` within a range (outbound only), `*` at any time (outbound only).
    enum Timing: Hashable, Sendable {
        case relative(earliest: TimeAmount, latest: TimeAmount)
        case absolute(earliest: TimeAmount, latest: TimeAmount)
        case any
    }

    /// Options as written. `nil` values inside `timestamps` are `*`.
    struct Options: Hashable, Sendable {
        var maximumSegmentSize: UInt16?
        var windowScale: UInt8?
        var sackPermitted = false
        var timestamps: Timestamps?
        var sackBlocks: [Block] = []

        struct Timestamps: Hashable, Sendable {
            var value: UInt32?
            var echoReply: UInt32?
        }

        struct Block: Hashable, Sendable {
            var start: UInt32
            var end: UInt32
        }
    }

    var timing: Timing
    var direction: Direction
    var flags: TCPFlags
    var sequence: UInt32
    var length: Int
    var acknowledgment: UInt32?
    var window: UInt16?
    /// `nil` when the line gives no `<...>`: outbound, options are then not checked.
    var options: Options?

    struct ParseError: Error, CustomStringConvertible {
        var description: String
    }

    init(_ text: String) throws(ParseError) {
        let script: Script
        do {
            script = try ScriptParser.parse(text, defines: [], timestampWildcards: true)
        } catch {
            throw ParseError(description: "\(error.message) in \"\(text)\"")
        }
        guard script.events.count == 1, script.options.isEmpty, script.initCommand == nil, script.cleanupCommand == nil,
            let event = script.events.first, case .packet(let packet) = event.action
        else {
            throw ParseError(description: "expected `time dir flags seq:end(len) …` in \"\(text)\"")
        }
        guard packet.other == nil, packet.encapsulation == nil, !packet.anySequence, packet.ipInformation.isEmpty,
            !packet.marked, packet.urgentPointer == nil
        else { throw ParseError(description: "the tester plays plain TCP segments only: \"\(text)\"") }
        timing = try Self.timing(event.timing, text)
        direction = packet.direction
        flags = packet.flags
        sequence = packet.start
        length = packet.length
        acknowledgment = packet.acknowledgment
        window = packet.window
        switch packet.options {
        case .none, .unchecked: options = nil
        case .list(let list): options = try Self.options(list, wildcards: packet.timestampWildcards, text)
        }
    }

    // MARK: Pieces

    private static func timing(_ timing: ScriptTiming, _ text: String) throws(ParseError) -> Timing {
        func amount(_ time: ScriptTime) -> TimeAmount { .microseconds(time.microseconds) }
        switch timing {
        case .any:
            return .any
        case .at(let time):
            return time.relative
                ? .relative(earliest: amount(time), latest: amount(time)) : .absolute(earliest: amount(time), latest: amount(time))
        case .range(let earliest, let latest):
            guard earliest.microseconds <= latest.microseconds else { throw ParseError(description: "empty time range in \"\(text)\"") }
            return earliest.relative
                ? .relative(earliest: amount(earliest), latest: amount(latest))
                : .absolute(earliest: amount(earliest), latest: amount(latest))
        case .blocking:
            throw ParseError(description: "`start...end` is for system calls, not packets: \"\(text)\"")
        }
    }

    private static func options(
        _ list: [ScriptOption], wildcards: ScriptTimestampWildcards, _ text: String
    ) throws(ParseError) -> Options {
        var options = Options()
        for option in list {
            switch option {
            case .nop, .eol: break
            case .sackPermitted: options.sackPermitted = true
            case .mss(let value): options.maximumSegmentSize = value
            case .windowScale(let shift): options.windowScale = shift
            case .timestamp(let value, let echo):
                options.timestamps = Options.Timestamps(
                    value: wildcards.contains(.value) ? nil : value, echoReply: wildcards.contains(.echo) ? nil : echo)
            case .sack(let blocks):
                options.sackBlocks += blocks.map { Options.Block(start: $0.0, end: $0.1) }
            case .md5, .other:
                throw ParseError(description: "the tester has no option \"\(option)\" in \"\(text)\"")
            }
        }
        return options
    }
}
