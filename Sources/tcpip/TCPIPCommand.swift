import ArgumentParser

/// `tcpip`: the command line of swift-tcpip — demos to watch TCP work, simulations to test it.
@main
struct TCPIPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tcpip",
        abstract: "A user-space TCP/IP stack in Swift: watch it work, and put it to the test.",
        discussion: """
            Everything runs in this process, on virtual time: two stacks joined by an in-memory link. \
            Start with `tcpip demo`.
            """,
        subcommands: [Demo.self, Simulate.self, RunScripts.self, Bench.self, FuzzCorpusCommand.self, Rules.self] + tunCommands)
}
