import NIOCore
@testable import TCPIP
import TCPIPWire
import Testing

/// Sizes the input path depends on (docs/PERFORMANCE.md, "Measured again on an idle machine"). A
/// segment is moved several times on its way into a TCB; up to 128 bytes the compiler moves it with
/// inline loads and stores, past that with a call to memcpy each time (3% of `bench bulk`'s
/// instructions when Fast Open's cookie took it to 136 bytes). Not a timing: a layout check.
@Suite struct HotPathLayoutTests {
    @Test func aSegmentIsCopiedInline() {
        #expect(MemoryLayout<IncomingSegment>.stride <= 128)
        #expect(MemoryLayout<TCPHeader>.size <= 96)
    }

    /// The Fast Open cookie keeps TCPOptions at 4-byte alignment: 8 padded TCPHeader by 8 bytes.
    @Test func optionsStayFourByteAligned() {
        #expect(MemoryLayout<TCPFastOpenCookie>.alignment == 4)
        #expect(MemoryLayout<TCPOptions>.alignment == 4)
    }

    /// An idle connection's memory is mostly its TCB, stored inline in a slab slot (docs/PERFORMANCE.md,
    /// "Memory per idle connection"). Swift lays fields out in declaration order: the TCB was 1,312
    /// bytes with 169 of padding; with small fields placed in the padding of the 9-byte optionals and
    /// 32-bit event counts, 1,184. A new field goes where it fills a hole, or this fails. Pacing's
    /// release time (issue 20) took it to 1,192: no 8-byte hole was left (its flag fills one).
    @Test func theTCBStaysSmall() {
        #expect(MemoryLayout<TCPConnection>.stride <= 1192)
        #expect(MemoryLayout<ECNState>.size <= 28)
    }

    /// The stack's event stays small: the rare echo request is boxed, not carried inline by every event.
    @Test func eventsStaySmall() {
        #expect(MemoryLayout<StackEvent>.size <= 16)
    }

    /// The cookie's octets survive the word layout, in wire order.
    @Test func cookieOctetsInWireOrder() throws {
        let octets: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
        let cookie = try #require(TCPFastOpenCookie(bytes: octets))
        #expect(cookie.bytes == octets)
        let short = try #require(TCPFastOpenCookie(form: .experimental, bytes: octets.prefix(6)))
        #expect(short.bytes == Array(octets.prefix(6)))
        #expect(!short.sameCookie(as: cookie))
        let mac = TCPFastOpenCookie(form: .standard, littleEndianMAC: 0x0807_0605_0403_0201)
        #expect(mac.bytes == [1, 2, 3, 4, 5, 6, 7, 8])
    }
}
