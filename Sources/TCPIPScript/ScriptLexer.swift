/// A token of packetdrill's lexer (`lexer.l`), with where it starts.
struct ScriptToken: Sendable {
    enum Kind: Sendable, Equatable {
        /// `-?[0-9]+`, `0x1f`, `.1`, `0.200` as written (the sign is a separate `-` token).
        case number(String)
        /// `[A-Za-z_][A-Za-z0-9_]*`: symbols, keywords, flags.
        case word(String)
        case string(String)
        case ellipsis
        /// `` `…` `` (may span lines).
        case backquoted(String)
        /// `%{ … }%`
        case python(String)
        /// `--name` or `--name=value`, an option line.
        case option(String)
        /// One of `< > : ( ) [ ] { } , = | + ~ * . - ;`
        case punctuation(Character)
    }

    var kind: Kind
    var position: SourcePosition

    func isPunctuation(_ character: Character) -> Bool { kind == .punctuation(character) }
}

/// Splits a script into tokens, dropping `//` and `/* */` comments and whitespace.
struct ScriptLexer {
    private let characters: [Character]
    private var index = 0
    private var line = 1
    private var column = 1

    init(_ text: String) {
        characters = Array(text)
    }

    static func tokens(_ text: String) throws(ScriptSyntaxError) -> [ScriptToken] {
        var lexer = ScriptLexer(text)
        var tokens: [ScriptToken] = []
        while let token = try lexer.next() { tokens.append(token) }
        return tokens
    }

    private func peek(_ offset: Int = 0) -> Character? {
        index + offset < characters.count ? characters[index + offset] : nil
    }

    private mutating func advance() {
        if characters[index] == "\n" {
            line += 1
            column = 1
        } else {
            column += 1
        }
        index += 1
    }

    private var position: SourcePosition { SourcePosition(line: line, column: column) }

    private func error(_ message: String, at position: SourcePosition) -> ScriptSyntaxError {
        ScriptSyntaxError(position: position, message: message)
    }

    mutating func next() throws(ScriptSyntaxError) -> ScriptToken? {
        try skipBlanksAndComments()
        guard let character = peek() else { return nil }
        let start = position
        if character.isASCIIDigit || (character == "." && peek(1)?.isASCIIDigit == true) {
            return ScriptToken(kind: .number(readNumber()), position: start)
        }
        if character.isWordCharacter {
            var word = ""
            while let next = peek(), next.isWordCharacter || next.isASCIIDigit {
                word.append(next)
                advance()
            }
            return ScriptToken(kind: .word(word), position: start)
        }
        switch character {
        case "\"":
            advance()
            var text = ""
            while let next = peek(), next != "\"" {
                if next == "\\", let escaped = peek(1) {
                    advance()
                    text.append(escaped == "n" ? "\n" : escaped)
                } else {
                    text.append(next)
                }
                advance()
            }
            guard peek() == "\"" else { throw error("unterminated string", at: start) }
            advance()
            return ScriptToken(kind: .string(text), position: start)
        case "`":
            advance()
            let text = try readUntil("`", start: start, what: "backquoted command")
            return ScriptToken(kind: .backquoted(text), position: start)
        case "%" where peek(1) == "{":
            advance()
            advance()
            var text = ""
            while peek() != nil, !(peek() == "}" && peek(1) == "%") {
                text.append(peek()!)
                advance()
            }
            guard peek() != nil else { throw error("unterminated %{ python block", at: start) }
            advance()
            advance()
            return ScriptToken(kind: .python(text.trimmingBlanks), position: start)
        case "." where peek(1) == "." && peek(2) == ".":
            advance()
            advance()
            advance()
            return ScriptToken(kind: .ellipsis, position: start)
        case "-" where peek(1) == "-" && (peek(2)?.isWordCharacter ?? false):
            var text = ""
            while let next = peek(), !next.isWhitespace {
                text.append(next)
                advance()
            }
            return ScriptToken(kind: .option(String(text.dropFirst(2))), position: start)
        case "<", ">", ":", "(", ")", "[", "]", "{", "}", ",", "=", "|", "+", "~", "*", ".", "-", ";", "/", "!", "&":
            advance()
            return ScriptToken(kind: .punctuation(character), position: start)
        default:
            throw error("unexpected character `\(character)`", at: start)
        }
    }

    private mutating func readNumber() -> String {
        var text = ""
        if peek() == "0", peek(1) == "x" || peek(1) == "X" {
            text = "0x"
            advance()
            advance()
            while let next = peek(), next.isHexDigit {
                text.append(next)
                advance()
            }
            return text
        }
        while let next = peek(), next.isASCIIDigit {
            text.append(next)
            advance()
        }
        // A fraction, but not the start of `...` (`+0...0.2`).
        if peek() == ".", peek(1)?.isASCIIDigit == true || (peek(1) != "." && !text.isEmpty) {
            text.append(".")
            advance()
            while let next = peek(), next.isASCIIDigit {
                text.append(next)
                advance()
            }
        }
        return text
    }

    private mutating func readUntil(_ terminator: Character, start: SourcePosition, what: String) throws(ScriptSyntaxError) -> String {
        var text = ""
        while let next = peek(), next != terminator {
            text.append(next)
            advance()
        }
        guard peek() == terminator else { throw error("unterminated \(what)", at: start) }
        advance()
        return text
    }

    private mutating func skipBlanksAndComments() throws(ScriptSyntaxError) {
        while let character = peek() {
            if character.isWhitespace {
                advance()
            } else if character == "/", peek(1) == "/" {
                while let next = peek(), next != "\n" { advance() }
            } else if character == "/", peek(1) == "*" {
                let start = position
                advance()
                advance()
                while peek() != nil, !(peek() == "*" && peek(1) == "/") { advance() }
                guard peek() != nil else { throw error("unterminated /* comment", at: start) }
                advance()
                advance()
            } else {
                return
            }
        }
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
    var isWordCharacter: Bool { (isASCII && isLetter) || self == "_" }
}

extension String {
    var trimmingBlanks: String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}
