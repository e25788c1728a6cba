import ArgumentParser

/// `tcpip demo`: experiments that show one part of TCP at work, explained as they run.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Watch TCP at work: experiments explained as they run (default: flow-control).",
        subcommands: [DemoFlowControl.self, DemoSYNFlood.self, DemoNetfilter.self],
        defaultSubcommand: DemoFlowControl.self)
}
