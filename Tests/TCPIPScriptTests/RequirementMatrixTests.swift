import Foundation
import Testing

/// `docs/RFC9293-REQUIREMENTS.md` stays true: every requirement of RFC 9293's summary table has
/// one row, and every file, symbol, test and script a row cites still exists.
@Suite struct RequirementMatrixTests {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let matrixPath = "docs/RFC9293-REQUIREMENTS.md"

    /// The requirement numbers of RFC 9293 Appendix B, Table 8: MUST-1 to MUST-69, SHLD-1 to
    /// SHLD-31, MAY-1 to MAY-18 and REC-1.
    static let summaryTable: Set<String> = Set(
        (1...69).map { "MUST-\($0)" } + (1...31).map { "SHLD-\($0)" } + (1...18).map { "MAY-\($0)" } + ["REC-1"])

    static let statuses: Set<String> = ["met", "partly", "not met", "used", "not used", "n/a"]

    /// One row of the matrix.
    struct Row {
        var requirement: String
        var status: String
        var code: [Citation]
        var proof: [Citation]
        var notes: String
        var line: Int
    }

    /// A file and the symbols (or, for proof, test functions) cited in it.
    struct Citation {
        var path: String
        var symbols: [String]
    }

    static func rows() throws -> [Row] {
        let text = try String(contentsOf: packageRoot.appendingPathComponent(matrixPath), encoding: .utf8)
        var rows: [Row] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            guard line.hasPrefix("| "), line.hasSuffix(" |") else { continue }
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
                .map { $0.trimmingCharacters(in: .whitespaces) }
            guard let first = cells.first, isRequirementNumber(first) else { continue }
            guard cells.count == 6 else {
                Issue.record("\(matrixPath):\(index + 1): \(cells.count) cells, not 6")
                continue
            }
            rows.append(Row(
                requirement: first, status: cells[2], code: try citations(cells[3], line: index + 1),
                proof: try citations(cells[4], line: index + 1), notes: cells[5], line: index + 1))
        }
        return rows
    }

    static func isRequirementNumber(_ text: String) -> Bool {
        let parts = text.split(separator: "-")
        return parts.count == 2 && ["MUST", "SHLD", "MAY", "REC"].contains(parts[0]) && Int(parts[1]) != nil
    }

    /// The backquoted words of a cell: a path (`Sources/…` or `Tests/…`, `.swift` or `.pkt`), then
    /// the symbols cited in that file.
    static func citations(_ cell: String, line: Int) throws -> [Citation] {
        var citations: [Citation] = []
        for (index, token) in cell.components(separatedBy: "`").enumerated() where index % 2 == 1 {
            let isPath = (token.hasPrefix("Sources/") || token.hasPrefix("Tests/"))
                && (token.hasSuffix(".swift") || token.hasSuffix(".pkt"))
            if isPath {
                citations.append(Citation(path: token, symbols: []))
            } else if citations.isEmpty {
                Issue.record("\(matrixPath):\(line): `\(token)` is cited before any file")
            } else {
                citations[citations.count - 1].symbols.append(token)
            }
        }
        return citations
    }

    static func contents(_ path: String) -> String? {
        try? String(contentsOf: packageRoot.appendingPathComponent(path), encoding: .utf8)
    }

    /// Whether `word` occurs in `text` as a whole identifier.
    static func containsWord(_ text: String, _ word: String) -> Bool {
        var searchRange = text.startIndex..<text.endIndex
        while let found = text.range(of: word, range: searchRange) {
            let before = found.lowerBound == text.startIndex ? nil : text[text.index(before: found.lowerBound)]
            let after = found.upperBound == text.endIndex ? nil : text[found.upperBound]
            if !isIdentifierCharacter(before) && !isIdentifierCharacter(after) { return true }
            searchRange = found.upperBound..<text.endIndex
        }
        return false
    }

    static func isIdentifierCharacter(_ character: Character?) -> Bool {
        guard let character else { return false }
        return character.isLetter || character.isNumber || character == "_"
    }

    /// Whether `text` declares `func name(` with an `@Test` attribute since the previous declaration.
    static func declaresTest(_ text: String, _ name: String) -> Bool {
        guard let declaration = text.range(of: "func \(name)(") else { return false }
        let before = text[..<declaration.lowerBound]
        let sincePrevious = before.range(of: "func ", options: .backwards).map { before[$0.upperBound...] } ?? before
        return sincePrevious.contains("@Test")
    }

    @Test func everyRequirementOfTheSummaryTableHasOneRow() throws {
        let rows = try Self.rows()
        var count: [String: Int] = [:]
        for row in rows { count[row.requirement, default: 0] += 1 }
        for requirement in Self.summaryTable.sorted() where count[requirement] != 1 {
            Issue.record("\(requirement): \(count[requirement] ?? 0) rows in \(Self.matrixPath), not 1")
        }
        for requirement in count.keys.sorted() where !Self.summaryTable.contains(requirement) {
            Issue.record("\(requirement) is not in RFC 9293's summary table")
        }
    }

    /// Where the RFC's text is at hand (`../shared/rfc` beside the repository), its Appendix B
    /// lists exactly the numbers `summaryTable` holds.
    @Test func summaryTableMatchesTheRFC() throws {
        let rfc = Self.packageRoot.deletingLastPathComponent().appendingPathComponent("shared/rfc/rfc9293.txt")
        guard let text = try? String(contentsOf: rfc, encoding: .utf8) else { return }
        let start = try #require(text.range(of: "Appendix B.  TCP Requirement Summary", options: .backwards))
        let end = try #require(text.range(of: "Table 8: TCP Requirements Summary", range: start.upperBound..<text.endIndex))
        var found: Set<String> = []
        for word in text[start.upperBound..<end.lowerBound].split(whereSeparator: { $0 == " " || $0 == "|" || $0 == "\n" })
        where Self.isRequirementNumber(String(word)) {
            found.insert(String(word))
        }
        #expect(found == Self.summaryTable)
    }

    @Test func citedFilesSymbolsTestsAndScriptsExist() throws {
        let rows = try Self.rows()
        #expect(rows.count >= Self.summaryTable.count)
        for row in rows {
            for citation in row.code + row.proof {
                guard Self.contents(citation.path) != nil else {
                    Issue.record("\(row.requirement) (line \(row.line)): \(citation.path) does not exist")
                    continue
                }
                if citation.path.hasSuffix(".pkt") && !citation.symbols.isEmpty {
                    Issue.record("\(row.requirement): a script is cited alone, not with \(citation.symbols)")
                }
            }
            for citation in row.code {
                guard let text = Self.contents(citation.path) else { continue }
                for symbol in citation.symbols where !Self.containsWord(text, symbol) {
                    Issue.record("\(row.requirement) (line \(row.line)): `\(symbol)` no longer appears in \(citation.path)")
                }
            }
            for citation in row.proof {
                guard let text = Self.contents(citation.path) else { continue }
                if citation.path.hasSuffix(".swift") && citation.symbols.isEmpty {
                    Issue.record("\(row.requirement) (line \(row.line)): \(citation.path) is cited without a test")
                }
                for symbol in citation.symbols where !Self.declaresTest(text, symbol) {
                    Issue.record("\(row.requirement) (line \(row.line)): no @Test func \(symbol) in \(citation.path)")
                }
            }
        }
    }

    /// A row says what it claims: `met` with the code and a proof, `used` and `partly` with the
    /// code, and every row that is not plainly met explains itself.
    @Test func statusesAreKnownAndBackedUp() throws {
        for row in try Self.rows() {
            let at = "\(row.requirement) (line \(row.line))"
            guard Self.statuses.contains(row.status) else {
                Issue.record("\(at): unknown status \"\(row.status)\"")
                continue
            }
            let isMAY = row.requirement.hasPrefix("MAY-")
            if isMAY != (row.status == "used" || row.status == "not used") {
                Issue.record("\(at): a MAY is `used` or `not used`; a MUST or SHOULD is met or not")
            }
            if row.status == "met" && (row.code.isEmpty || row.proof.isEmpty) {
                Issue.record("\(at): `met` needs the code and a test or script that proves it")
            }
            if (row.status == "used" || row.status == "partly") && row.code.isEmpty {
                Issue.record("\(at): `\(row.status)` needs the code")
            }
            if ["partly", "not met", "n/a"].contains(row.status) && row.notes.isEmpty {
                Issue.record("\(at): `\(row.status)` needs a note saying why, or what is missing")
            }
        }
    }

    /// The summary table at the top counts the rows as they are.
    @Test func summaryCountsTheRows() throws {
        let rows = try Self.rows()
        let text = try #require(Self.contents(Self.matrixPath))
        for (label, prefixes) in [("MUST", ["MUST-"]), ("SHOULD", ["SHLD-", "REC-"]), ("MAY", ["MAY-"])] {
            let group = rows.filter { row in prefixes.contains { row.requirement.hasPrefix($0) } }
            let counts = Self.statuses.sorted().map { status in
                (status, group.filter { $0.status == status }.count)
            }
            let summary = "| \(label) | \(group.count) | " + counts.map { "\($0.1)" }.joined(separator: " | ") + " |"
            #expect(text.contains(summary), "expected the summary row \(summary)")
        }
    }
}
