import NIOCore
import TCPIP

/// Stacks joined by links, on one virtual clock: the driver loop of DESIGN.md for simulations,
/// demos, tests and benchmarks.
///
/// Each step delivers what the links hold for `now`, runs the timers that are due, and hands
/// what the stacks want to send to their links — until nothing more happens at this instant.
/// Then the clock jumps to the next scheduled event. No wall clock is read, so a seed
/// reproduces a run exactly.
public final class VirtualNetwork {
    /// A stack and the link it sends and receives on.
    public struct Host {
        /// The stack.
        public let stack: Stack
        /// Its end of the link.
        public let link: PacketLink
    }

    /// The virtual time.
    public private(set) var now: Instant
    /// The hosts, in the order added.
    public private(set) var hosts: [Host] = []
    /// Datagrams moved from stacks to links and back, for progress reports.
    public private(set) var datagramsMoved: UInt64 = 0
    /// Called after every datagram a stack takes in, with that stack: for checks that must hold at
    /// every step (a memory budget never exceeded, running totals equal to a recount).
    public var afterDatagram: ((Stack) -> Void)?

    /// A network with no host yet, its clock at `start`.
    public init(start: Instant = .zero) {
        self.now = start
    }

    /// Adds a host: `stack`, sending and receiving on `link`.
    public func addHost(_ stack: Stack, link: PacketLink) {
        hosts.append(Host(stack: stack, link: link))
    }

    /// Moves packets and fires timers at the current instant until nothing more happens now.
    public func settle() {
        var progress = true
        while progress {
            progress = false
            for host in hosts {
                while let datagram = host.link.receive(now: now) {
                    host.stack.receive(datagram, now: now)
                    afterDatagram?(host.stack)
                    datagramsMoved &+= 1
                    progress = true
                }
                if let deadline = host.stack.nextDeadline, deadline <= now {
                    host.stack.advanceTime(to: now)
                    progress = true
                }
                while let datagram = host.stack.nextPacketToSend() {
                    host.link.send(datagram, now: now)
                    progress = true
                }
            }
        }
    }

    /// The next instant at which a stack timer or a link delivery is due, if any.
    public var nextEventTime: Instant? {
        var earliest: Instant? = nil
        for host in hosts {
            earliest = Instant.earliest(earliest, Instant.earliest(host.stack.nextDeadline, host.link.nextArrival))
        }
        return earliest.map { max($0, now) }
    }

    /// Settles, then moves the clock to the next event (but not past `limit`) and settles again.
    ///
    /// - Returns: false when nothing is scheduled and no limit was given: the network is idle.
    @discardableResult
    public func advance(notAfter limit: Instant? = nil) -> Bool {
        settle()
        var target = nextEventTime
        if let limit { target = min(target ?? limit, limit) }
        guard let target else { return false }
        now = max(now, target)
        settle()
        return true
    }

    /// Moves the clock to `instant`, processing every event on the way.
    public func run(until instant: Instant) {
        while now < instant {
            advance(notAfter: instant)
        }
        settle()
    }
}
