/// Wraps prose at word boundaries so explanations read well in an 80-column terminal.
enum TextWrapping {
    /// - Parameter continuation: put in front of every line after the first.
    static func wrap(_ text: String, width: Int = 80, continuation: String = "") -> [String] {
        var lines: [String] = []
        var current = ""
        for word in text.split(separator: " ", omittingEmptySubsequences: true) {
            if current.isEmpty {
                current = lines.isEmpty ? String(word) : continuation + word
            } else if current.count + 1 + word.count <= width {
                current += " " + word
            } else {
                lines.append(current)
                current = continuation + word
            }
        }
        if !current.isEmpty { lines.append(current) }
        return lines
    }
}
