import Foundation
import TCPIPFuzzing
import Testing

/// The fuzz targets of `Fuzz/` under `swift test`: every committed seed of `Fuzz/Corpus/` replays
/// through the same entry point libFuzzer calls, and every input that once crashed a target stays
/// here as a test of its own. (libFuzzer itself needs `-sanitize=fuzzer`: `Fuzz/run.sh`.)
@Suite struct FuzzRegressionTests {
    static let corpus = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/Corpus")

    static func entryPoint(_ target: String) -> (UnsafeRawBufferPointer) -> Void {
        switch target {
        case "ipv4": WireFuzzing.ipv4
        case "ipv6": WireFuzzing.ipv6
        case "datagram": WireFuzzing.datagram
        case "tcp": WireFuzzing.tcp
        case "address": WireFuzzing.addressText
        case "udp": WireFuzzing.udp
        case "icmp": WireFuzzing.icmp
        case "reassembly": { ReassemblyFuzzing.run($0) }
        case "rules": RuleFuzzing.rules
        case "filter": { FilterFuzzing.run($0) }
        default: { StackFuzzing.run($0) }
        }
    }

    static func replay(_ target: String, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { entryPoint(target)($0) }
    }

    @Test(arguments: FuzzCorpus.targets)
    func committedSeedsReplay(target: String) throws {
        let folder = Self.corpus.appendingPathComponent(target)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(!names.isEmpty, "no seeds for \(target) in \(folder.path)")
        for name in names {
            let data = try Data(contentsOf: folder.appendingPathComponent(name))
            Self.replay(target, Array(data))
        }
    }

    /// The committed corpus is what the generator writes today: a fixture or format change that
    /// forgets to regenerate it (`tcpip fuzz-corpus Fuzz/Corpus`) would leave seeds that no longer
    /// reach the states they were made for.
    @Test func committedCorpusMatchesGenerator() throws {
        for seed in FuzzCorpus.generate() {
            let file = Self.corpus.appendingPathComponent(seed.target).appendingPathComponent(seed.name)
            let current = (try? Data(contentsOf: file)).map { Array($0) == seed.bytes } ?? false
            #expect(current, "Fuzz/Corpus/\(seed.target)/\(seed.name) is missing or stale: run tcpip fuzz-corpus Fuzz/Corpus")
        }
    }

    /// Found by the stack target in CI: a forged timestamp left the server's TS.Recent ahead of the
    /// client's clock, so PAWS dropped every client segment and answered it with a duplicate ACK, and
    /// PRR's slow-start bound let each of those ACKs — delivering nothing — send another segment:
    /// an endless exchange at one instant. An ACK that delivers nothing now sends nothing in recovery.
    @Test func duplicateAcksThatDeliverNothingClockNothingOut() throws {
        let file = Self.corpus.appendingPathComponent("stack/regression-prr-dupack-loop")
        Self.replay("stack", Array(try Data(contentsOf: file)))
    }

    /// Found by the stack target: forged segments pushed the server's TS.Recent ahead and made it SACK
    /// data the client had sent at that instant, so RACK's segment had an RTT of zero. Each PAWS duplicate
    /// ACK then re-marked the holes just retransmitted as lost again (RACK_sent_after's sequence tie-break),
    /// and they went again: an endless exchange at one instant. A retransmission is now lost again only
    /// when a segment sent strictly after it is delivered (RFC 6675 NextSeg rule (1), RFC 8985 §6.2).
    @Test func retransmissionsAreNotReMarkedLostAtTheInstantTheyWereSent() throws {
        let file = Self.corpus.appendingPathComponent("stack/regression-rack-same-instant-relost")
        Self.replay("stack", Array(try Data(contentsOf: file)))
    }

    /// Found by the rules target, the first in CI: rules that parsed but listed as text that does not
    /// parse back — `impair duplicate 0%` as a bare `impair` (every parameter at zero left out), and
    /// `tcp flags 0` as a bare `tcp flags` (an empty mask has no flag names).
    @Test(arguments: ["regression-impair-all-zero", "regression-tcp-flags-0"])
    func degenerateRulesListAsTextThatParses(seed: String) throws {
        let file = Self.corpus.appendingPathComponent("rules").appendingPathComponent(seed)
        Self.replay("rules", Array(try Data(contentsOf: file)))
    }

    /// Found by the stack target on its first seed: the client's recorded segments replayed into the
    /// server leave the two disagreeing about both sequence spaces, and each answered the other's
    /// bare ACK (SEG.ACK beyond SND.NXT, or SEG.SEQ outside the window) with an ACK of its own — an
    /// endless ACK exchange at one instant (RFC 5961 §10). Those replies are now rate-limited.
    @Test func desynchronisedStacksDoNotAckEachOtherForever() {
        let replay = FuzzCorpus.generate().first { $0.target == "stack" && $0.name == "replay" }!
        let fixture = replay.bytes.withUnsafeBytes { StackFuzzing.run($0) }
        let suppressed = fixture.server.counters.invalidAckRepliesSuppressed
            + fixture.client.counters.invalidAckRepliesSuppressed
        #expect(suppressed > 0)
    }

    /// The fixture is deterministic: two builds agree on every connection's sequence numbers, so a
    /// crash file replays the same way.
    @Test func fixtureIsDeterministic() {
        let a = StackFuzzing.Fixture(), b = StackFuzzing.Fixture()
        #expect(a.targets == b.targets)
        #expect(a.serverConnections.count == 4)
        #expect(a.server.halfOpenCount == 1)
        for (x, y) in zip(a.serverConnections, b.serverConnections) {
            #expect(a.server.status(x) == b.server.status(y))
        }
    }
}
