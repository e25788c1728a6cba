import TCPIP
import TCPIPWire

/// TCP Fast Open in scripts (RFC 7413): the `FO` and `FOEXP` options of packet lines, and the
/// TFO_COOKIE symbol.
extension ScriptRunner {
    /// The cookie option an `FO …` / `FOEXP …` item of a packet line names, or nil for another option.
    /// `TFO_COOKIE` is the cookie the stack's key gives the script's remote address (packetdrill's
    /// run_all.py defines it as that cookie for defaults.sh's key).
    func fastOpenOption(_ text: String) throws -> TCPFastOpenCookie? {
        let words = text.split(separator: " ")
        guard let name = words.first, name == "FO" || name == "FOEXP" else { return nil }
        let form: TCPFastOpenCookie.Form = name == "FO" ? .standard : .experimental
        guard words.count > 1 else { return .request(form) }
        let value = String(words[1])
        if value == "TFO_COOKIE" {
            return stack.fastOpenCookie(client: remoteAddress, server: localAddress, form: form)
        }
        guard value.count % 2 == 0, let cookie = TCPFastOpenCookie(form: form, bytes: Self.hexBytes(value) ?? []) else {
            throw ScriptSkip(reason: "option `\(text)`: a Fast Open cookie the stack would not parse (RFC 7413 §4.1.1: 4 to 16 octets)")
        }
        return cookie
    }

    /// A packet line's option item in the form `rawOptions` describes the wire's: Fast Open options
    /// with their cookie in lower-case hex, TFO_COOKIE resolved.
    func normalisedOption(_ option: ScriptOption) -> ScriptOption {
        guard case .other(let text) = option, let cookie = try? fastOpenOption(text) else { return option }
        return .other(cookie.description)
    }

    static func hexBytes(_ text: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2, limitedBy: text.endIndex) ?? text.endIndex
            guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }

    /// A Fast Open option on the wire (kind 34, or 254 with the magic 0xF989), as `FO hex`.
    static func rawFastOpenOption(kind: UInt8, bytes: [UInt8]) -> ScriptOption {
        if kind == 254, bytes.count >= 2, bytes[0] == 0xF9, bytes[1] == 0x89,
           let cookie = TCPFastOpenCookie(form: .experimental, bytes: bytes.dropFirst(2)) {
            return .other(cookie.description)
        }
        if kind == 34, let cookie = TCPFastOpenCookie(form: .standard, bytes: bytes) { return .other(cookie.description) }
        return .other("kind \(kind)")
    }
}
