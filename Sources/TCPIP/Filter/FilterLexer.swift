import NIOCore
import TCPIPWire

/// One token of a ruleset's text, with where it starts (for error messages).
struct FilterToken: Equatable {
    enum Kind: Equatable {
        case word, string, setReference, punctuation, newline, end
    }

    var kind: Kind
    var text: String
    var line: Int
    var column: Int
}

/// Splits the text into words (names, numbers, addresses, prefixes, ranges, `10/second`, `1%`),
/// strings, `@set` references, punctuation and newlines (which end rules); `#` comments and
/// `\` line continuations are dropped.
enum FilterLexer {
    static func isWordByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "/"), UInt8(ascii: "%"), UInt8(ascii: "-"),
             UInt8(ascii: "*"), UInt8(ascii: "$"):
            true
        default:
            false
        }
    }

    static func tokens(_ text: String) throws(FilterParseError) -> [FilterToken] {
        let bytes = Array(text.utf8)
        var tokens: [FilterToken] = []
        var index = 0, line = 1, lineStart = 0
        func token(_ kind: FilterToken.Kind, _ start: Int, _ end: Int) -> FilterToken {
            FilterToken(kind: kind, text: String(decoding: bytes[start..<end], as: UTF8.self), line: line, column: start - lineStart + 1)
        }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                index += 1
            case UInt8(ascii: "\n"):
                tokens.append(token(.newline, index, index + 1))
                index += 1
                line += 1
                lineStart = index
            case UInt8(ascii: "#"):
                while index < bytes.count && bytes[index] != UInt8(ascii: "\n") { index += 1 }
            case UInt8(ascii: "\\"):
                var next = index + 1
                while next < bytes.count && (bytes[next] == UInt8(ascii: " ") || bytes[next] == UInt8(ascii: "\t") || bytes[next] == UInt8(ascii: "\r")) {
                    next += 1
                }
                guard next < bytes.count, bytes[next] == UInt8(ascii: "\n") else {
                    throw FilterParseError(line: line, column: index - lineStart + 1, message: "unexpected '\\'")
                }
                index = next + 1
                line += 1
                lineStart = index
            case UInt8(ascii: "\""):
                var end = index + 1
                while end < bytes.count && bytes[end] != UInt8(ascii: "\"") && bytes[end] != UInt8(ascii: "\n") { end += 1 }
                guard end < bytes.count, bytes[end] == UInt8(ascii: "\"") else {
                    throw FilterParseError(line: line, column: index - lineStart + 1, message: "unterminated string")
                }
                var string = token(.string, index + 1, end)
                string.column -= 1
                tokens.append(string)
                index = end + 1
            case UInt8(ascii: "@"):
                var end = index + 1
                while end < bytes.count && isWordByte(bytes[end]) { end += 1 }
                guard end > index + 1 else {
                    throw FilterParseError(line: line, column: index - lineStart + 1, message: "expected a set name after '@'")
                }
                var reference = token(.setReference, index + 1, end)
                reference.column -= 1
                tokens.append(reference)
                index = end
            case UInt8(ascii: "="), UInt8(ascii: "!"), UInt8(ascii: "<"), UInt8(ascii: ">"):
                let double = index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "=")
                tokens.append(token(.punctuation, index, index + (double ? 2 : 1)))
                index += double ? 2 : 1
            case UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: ";"), UInt8(ascii: ","), UInt8(ascii: "("), UInt8(ascii: ")"),
                 UInt8(ascii: "&"), UInt8(ascii: "|"):
                tokens.append(token(.punctuation, index, index + 1))
                index += 1
            default:
                guard isWordByte(byte) else {
                    throw FilterParseError(line: line, column: index - lineStart + 1, message: "unexpected character")
                }
                var end = index
                while end < bytes.count && isWordByte(bytes[end]) { end += 1 }
                tokens.append(token(.word, index, end))
                index = end
            }
        }
        tokens.append(FilterToken(kind: .end, text: "", line: line, column: index - lineStart + 1))
        return tokens
    }
}
