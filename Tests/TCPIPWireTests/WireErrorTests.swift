import Testing
import TCPIPWire

@Suite struct WireErrorTests {
    /// Drop counters are keyed by these names, so they must stay distinct and stable.
    @Test func counterNamesAreDistinctAndStable() {
        let all: [WireError] = [
            .truncated, .unsupportedVersion, .badHeaderLength, .badTotalLength, .badChecksum, .fragment,
            .badExtensionHeader, .badDataOffset, .badOptionLength, .invalidFlags, .badLength, .missingChecksum,
            .badQuotedDatagram,
        ]
        #expect(Set(all.map(\.counterName)).count == all.count)
        #expect(WireError.badChecksum.counterName == "bad_checksum")
        #expect(WireError.invalidFlags.description == "invalid_flags")
    }
}
