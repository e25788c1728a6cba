import ArgumentParser
import NIOCore
import TCPIP
import TCPIPWire

/// `tcpip demo netfilter`: a packet walks the hooks, then a SYN flood meets a per-source rate limit
/// while legitimate clients get in, and the ruleset is listed with its counters.
struct DemoNetfilter: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "netfilter",
        abstract: "Rules at netfilter's hooks: a packet walking them, a SYN flood limited by a rate, the counters.",
        discussion: """
            A client (198.18.0.2) and a server (198.18.0.1) with rules in nftables' syntax, on virtual time. \
            First one SYN is followed through the client's output and postrouting hooks and the server's \
            prerouting and input hooks. Then --flood-sources spoofed addresses send --flood-rate SYNs a \
            second for --flood-seconds, while --legit clients connect; a meter limits each source to 5 SYNs \
            a second. The ruleset is listed with its counters at the end. The last line is machine-readable:
              legit_established=<n>/<N> flood_syns=<n> flood_dropped=<n> syn_queue_peak=<n>
            The same options always print the same output.
            """)

    @Option(name: .customLong("flood-rate"), help: "Spoofed SYNs per second, all sources together.")
    var floodRate: Int = NetfilterDemo.Options().floodRate
    @Option(name: .customLong("flood-sources"), help: "Spoofed source addresses (198.19.0.1, …).")
    var floodSources: Int = NetfilterDemo.Options().floodSources
    @Option(name: .customLong("flood-seconds"), help: "How long the flood lasts.")
    var floodSeconds: Int = NetfilterDemo.Options().floodSeconds
    @Option(name: .customLong("legit"), help: "Legitimate clients connecting during the flood.")
    var legitimate: Int = NetfilterDemo.Options().legitimateClients
    @Option(help: "Seed of the attacker's ports and ISNs, and of both stacks.")
    var seed: UInt64 = NetfilterDemo.Options().seed

    func validate() throws {
        try OptionChecks.within(floodRate, 0...100_000, option: "flood-rate", because: "SYNs per second of virtual time")
        try OptionChecks.within(floodSources, 1...250, option: "flood-sources", because: "addresses 198.19.0.1 onwards")
        try OptionChecks.within(floodSeconds, 1...60, option: "flood-seconds", because: "seconds of virtual time")
        try OptionChecks.within(legitimate, 0...1000, option: "legit", because: "legitimate clients connecting during the flood")
    }

    func run() throws {
        var options = NetfilterDemo.Options()
        options.floodRate = floodRate
        options.floodSources = floodSources
        options.floodSeconds = floodSeconds
        options.legitimateClients = legitimate
        options.seed = seed
        _ = NetfilterDemo.run(options) { print($0) }
    }
}

/// The netfilter experiment, on two stacks joined back to back: the output depends only on the options.
struct NetfilterDemo {
    struct Options: Hashable, Sendable {
        var floodRate = 2000
        var floodSources = 8
        var floodSeconds = 3
        var legitimateClients = 6
        var seed: UInt64 = 1
    }

    struct Outcome: Hashable, Sendable {
        var established = 0
        var floodSYNs = 0
        var floodDropped: UInt64 = 0
        var synQueuePeak = 0

        func summaryLine(legitimate: Int) -> String {
            "legit_established=\(established)/\(legitimate) flood_syns=\(floodSYNs) flood_dropped=\(floodDropped) "
                + "syn_queue_peak=\(synQueuePeak)"
        }
    }

    static let server = IPv4Address(198, 18, 0, 1)
    static let client = IPv4Address(198, 18, 0, 2)

    static let clientRules = """
        table inet client {
            chain output {
                type filter hook output priority 0; policy accept;
                tcp dport 80 tcp flags syn log prefix "walk "
            }
            chain postrouting {
                type filter hook postrouting priority 0; policy accept;
                tcp dport 80 tcp flags syn log prefix "walk "
            }
        }
        """

    static let serverRules = """
        table inet server {
            chain prerouting {
                type filter hook prerouting priority -100; policy accept;
                ip saddr 198.18.0.2 tcp flags syn log prefix "walk "
            }
            chain input {
                type filter hook input priority 0; policy drop;
                ct state established,related accept
                ct state invalid drop
                ip saddr 198.18.0.2 tcp flags syn log prefix "walk "
                tcp dport 80 tcp flags syn meter per_source size 1024 { ip saddr limit rate 5/second } accept
                tcp dport 80 tcp flags syn drop
                icmp type echo-request accept
            }
        }
        """

    static func run(_ options: Options, emit: (String) -> Void) -> Outcome {
        var outcome = Outcome()
        var clientConfiguration = StackConfiguration(addresses: [.v4(client)], seed: options.seed)
        clientConfiguration.rules = try! FilterRuleset(parsing: clientRules)
        var serverConfiguration = StackConfiguration(addresses: [.v4(server)], seed: options.seed &+ 1)
        serverConfiguration.rules = try! FilterRuleset(parsing: serverRules)
        let clientStack = Stack(clientConfiguration)
        let serverStack = Stack(serverConfiguration)
        let listener = try! serverStack.listen(on: 80, backlog: 64)
        var now = Instant.zero
        var generator = SeededGenerator(seed: options.seed ^ 0x464C_4F4F_4400)

        func exchange() {
            var moved = true
            while moved {
                moved = false
                while let packet = clientStack.nextPacketToSend() {
                    serverStack.receive(packet, now: now)
                    moved = true
                }
                // Answers to spoofed sources go nowhere.
                while let packet = serverStack.nextPacketToSend() {
                    if let ip = try? IPDatagram.parse(packet, verifyChecksum: false), ip.destination == .v4(client) {
                        clientStack.receive(packet, now: now)
                        moved = true
                    }
                }
                while serverStack.accept(listener) != nil {}
            }
        }

        emit("tcpip demo netfilter: rules at netfilter's hooks, on virtual time")
        emit("")
        emit("The server's rules (nftables' syntax):")
        for line in wrapped(serverRules + "\n") { emit("  " + line) }
        emit("")
        emit("1. One SYN walks the hooks: the client's output and postrouting, then the")
        emit("   server's prerouting and input. Each `log` rule it meets says so:")
        let first = try! clientStack.connect(to: Endpoint(.v4(server), 80), now: now)
        exchange()
        let walk = clientStack.drainFilterLog() + serverStack.drainFilterLog()
        for record in walk {
            emit("  \(record.hook.rawValue.padding(11)) \(record.chain.padding(11)) "
                + "\(record.source).\(record.sourcePort) > \(record.destination).\(record.destinationPort) SYN")
        }
        let firstState = clientStack.status(first)?.state
        emit("  then SYN-ACK and ACK: the client's connection is \(firstState.map { "\($0)" } ?? "gone").")
        emit("")
        emit("2. A SYN flood: \(options.floodRate) SYNs a second from \(options.floodSources) spoofed addresses for "
            + "\(options.floodSeconds) s;")
        emit("   a meter lets each source 5 SYNs a second (burst 5), the rest are dropped;")
        emit("   \(options.legitimateClients) legitimate clients connect meanwhile.")
        emit("")
        emit("  time  flood SYNs  passed  dropped  SYN queue  legit tried  established")
        let step = TimeAmount.milliseconds(1)
        let end = Instant.zero + .seconds(Int64(options.floodSeconds))
        let legitimateInterval = TimeAmount.nanoseconds(
            Int64(options.floodSeconds) * 1_000_000_000 / Int64(max(options.legitimateClients, 1)))
        var nextLegitimate = Instant.zero + .milliseconds(100)
        var clients: [ConnectionID] = []
        var established = Set<ConnectionID>()
        var floodCredit = 0
        var secondSYNs = 0
        let dropRule = 4
        var droppedBefore = serverStack.ruleCounter("input", dropRule)
        var passedBefore = serverStack.ruleCounter("input", dropRule - 1)
        var second = 1
        while now < end {
            now = now + step
            clientStack.advanceTime(to: now)
            serverStack.advanceTime(to: now)
            floodCredit += options.floodRate
            while floodCredit >= 1000 {
                floodCredit -= 1000
                let source = IPv4Address(198, 19, 0, UInt8(1 + Int.random(in: 0..<options.floodSources, using: &generator)))
                let header = TCPHeader(
                    sourcePort: UInt16.random(in: 1024...65535, using: &generator), destinationPort: 80,
                    sequenceNumber: SequenceNumber(UInt32.random(in: 0...UInt32.max, using: &generator)),
                    acknowledgmentNumber: SequenceNumber(0), flags: .syn, window: 64240)
                serverStack.receive(
                    PacketBuffer.tcpDatagram(header: header, payload: nil, source: .v4(source), destination: .v4(server)), now: now)
                secondSYNs += 1
                outcome.floodSYNs += 1
            }
            if clients.count < options.legitimateClients, now >= nextLegitimate {
                clients.append(try! clientStack.connect(to: Endpoint(.v4(server), 80), now: now))
                nextLegitimate = nextLegitimate + legitimateInterval
            }
            exchange()
            for id in clients where clientStack.status(id)?.state == .established { established.insert(id) }
            outcome.synQueuePeak = max(outcome.synQueuePeak, serverStack.halfOpenCount)
            _ = clientStack.drainFilterLog()
            _ = serverStack.drainFilterLog()
            if now == Instant.zero + .seconds(Int64(second)) {
                let dropped = serverStack.ruleCounter("input", dropRule)
                let passed = serverStack.ruleCounter("input", dropRule - 1)
                emit("  \(String(second).leftPadding(3)) s  \(String(secondSYNs).leftPadding(10))  "
                    + "\(String(passed - passedBefore).leftPadding(6))  \(String(dropped - droppedBefore).leftPadding(7))  "
                    + "\(String(serverStack.halfOpenCount).leftPadding(9))  \(String(clients.count).leftPadding(11))  "
                    + "\(String(established.count).leftPadding(11))")
                droppedBefore = dropped
                passedBefore = passed
                secondSYNs = 0
                second += 1
            }
        }
        outcome.established = established.count
        outcome.floodDropped = serverStack.ruleCounter("input", dropRule)
        emit("")
        emit("  The flood's SYNs past the meter wait in the SYN queue (their SYN-ACKs go")
        emit("  nowhere); the clients' SYNs come from a source of their own, with its own")
        emit("  bucket, so \(established.count) of \(clients.count) got in.")
        emit("")
        emit("3. The ruleset with its counters (`nft list ruleset`):")
        for line in wrapped(serverStack.filterListing() ?? "") { emit("  " + line) }
        emit("")
        emit(outcome.summaryLine(legitimate: options.legitimateClients))
        return outcome
    }

    static func lines(_ options: Options) -> (lines: [String], outcome: Outcome) {
        var lines: [String] = []
        let outcome = run(options) { lines.append($0) }
        return (lines, outcome)
    }

    /// A listing's lines, those longer than 76 columns continued on the next with nft's `\`.
    static func wrapped(_ listing: String) -> [String] {
        var result: [String] = []
        let spaced = String(listing.flatMap { $0 == "\t" ? Array("    ") : [$0] })
        for line in spaced.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty {
            let indent = String(line.prefix { $0 == " " || $0 == "\t" })
            var current = ""
            for word in line.dropFirst(indent.count).split(separator: " ") {
                if !current.isEmpty, indent.count + current.count + word.count + 3 > 78 {
                    result.append(indent + current + " \\")
                    current = "    " + word
                } else {
                    current += current.isEmpty ? String(word) : " " + word
                }
            }
            result.append(indent + current)
        }
        return result
    }
}

extension Stack {
    /// The packet counter of rule `rule` (from 0) of chain `chain`, as listed now (0 without one).
    func ruleCounter(_ chain: String, _ rule: Int) -> UInt64 {
        for table in packetFilter?.currentRuleset.tables ?? [] {
            for candidate in table.chains where candidate.name == chain && rule < candidate.rules.count {
                return candidate.rules[rule].packets
            }
        }
        return 0
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }

    func leftPadding(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
