import TCPIP

/// An epoll instance (fs/eventpoll.c): the descriptors it watches and which of them are on its
/// ready list.
struct EpollSet {
    struct Item {
        /// The events asked for, with EPOLLERR and EPOLLHUP, which do_epoll_ctl always adds, and the
        /// flags EPOLLET, EPOLLONESHOT, EPOLLEXCLUSIVE.
        var events: Int64
        /// On the ready list: a wake-up (or epoll_ctl's poll) found it ready since it was last reported.
        var ready = false
        /// The wake-ups the socket had made when epoll last looked.
        var seen: ScriptRunner.Wakeups
    }
    var items: [Int: Item] = [:]

    static let edgeTriggered: Int64 = 0x8000_0000
    static let oneShot: Int64 = 0x4000_0000
    static let flags: Int64 = 0x8000_0000 | 0x4000_0000 | 0x2000_0000 | 0x1000_0000
}

/// epoll_create, epoll_ctl and epoll_wait, on the runner's poll masks (`pollMask`).
///
/// Linux's model, which the runner follows: epoll_ctl ADD and MOD poll the descriptor and put it on
/// the ready list when an asked-for event holds (ep_insert, ep_modify); afterwards only a wake-up
/// of the socket puts it there (ep_poll_callback) — data arriving (sk_data_ready, EPOLLIN), an
/// error or error-queue entry (sk_error_report, EPOLLERR), a change of state (sk_state_change, any
/// event) — and only when its key is an event the item asks for. epoll_wait polls each item on
/// the list and reports those with events (ep_send_events): an edge-triggered item (EPOLLET)
/// leaves the list, a level-triggered one stays, an EPOLLONESHOT one is disabled until
/// EPOLL_CTL_MOD. The runner sees wake-ups as changes of what the stack reports when epoll looks:
/// RCV.NXT, the state, the error, the zero-copy notifications made.
extension ScriptRunner {
    /// What a socket has done that wakes its waiters, as the runner sees it.
    struct Wakeups: Equatable {
        var receiveNext: UInt32?
        var state: TCPState?
        var failed = false
        var notifications = 0

        /// The poll key of the wake-ups between `self` and `later`: nil for none, 0 for one
        /// without a key (a state change wakes every waiter).
        func key(to later: Wakeups) -> Int64? {
            if later.state != state || later.failed != failed { return 0 }
            var key: Int64 = 0
            if later.receiveNext != receiveNext { key |= 0x1 | 0x40 }
            if later.notifications != notifications { key |= 0x8 }
            return key == 0 ? nil : key
        }
    }

    func wakeups(_ fd: Int) -> Wakeups {
        completeZeroCopy(fd)
        guard let socket = sockets[fd] else { return Wakeups() }
        let status = socket.connection.flatMap { stack.status($0) }
        return Wakeups(
            receiveNext: status?.receiveNext, state: status?.state, failed: status?.error != nil,
            notifications: socket.zeroCopy.reports)
    }

    func epoll(_ call: ScriptSystemCall, blocking: Bool) throws -> CallResult {
        let arguments = call.arguments
        switch call.name {
        case "epoll_create", "epoll_create1":
            let fd = Int(call.result >= 0 ? call.result : Int64(max(sockets.keys.max() ?? 2, epolls.keys.max() ?? 2) + 1))
            epolls[fd] = EpollSet()
            return .value(Int64(fd))
        case "epoll_ctl":
            let epfd = Int(try integer(arguments, 0))
            guard epolls[epfd] != nil else { return .error("EBADF") }
            let operation = try integer(arguments, 1)
            let fd = Int(try integer(arguments, 2))
            guard sockets[fd] != nil else { return .error("EBADF") }
            switch operation {
            case ScriptSymbols.value("EPOLL_CTL_DEL"):
                guard epolls[epfd]!.items.removeValue(forKey: fd) != nil else { return .error("ENOENT") }
                return .value(0)
            case ScriptSymbols.value("EPOLL_CTL_ADD"), ScriptSymbols.value("EPOLL_CTL_MOD"):
                let adding = operation == ScriptSymbols.value("EPOLL_CTL_ADD")
                if adding == (epolls[epfd]!.items[fd] != nil) { return .error(adding ? "EEXIST" : "ENOENT") }
                guard case .structure(let fields)? = arguments[safe: 3],
                    let events = fields.first(where: { $0.name == .symbol("events") }).flatMap({ ScriptSymbols.evaluate($0.value) }) else {
                    throw ScriptSkip(reason: "epoll_ctl without an epoll_event's events")
                }
                var item = EpollSet.Item(events: events | 0x8 | 0x10, seen: wakeups(fd))
                item.ready = pollMask(fd) & item.events & ~EpollSet.flags != 0
                epolls[epfd]!.items[fd] = item
                return .value(0)
            default:
                return .error("EINVAL")
            }
        default:
            return try epollWait(arguments, blocking: blocking, expected: call.result)
        }
    }

    /// `epoll_wait(epfd, {events=E, fd=F}, maxevents, timeout) = n`: the first event reported is
    /// compared with the structure when n > 0.
    private func epollWait(_ arguments: [ScriptExpression], blocking: Bool, expected: Int64) throws -> CallResult {
        let epfd = Int(try integer(arguments, 0))
        guard var set = epolls[epfd] else { return .error("EBADF") }
        let maximum = Int(try integer(arguments, 2, default: 1))
        guard maximum > 0 else { return .error("EINVAL") }
        var reported: [(fd: Int, events: Int64)] = []
        for fd in set.items.keys.sorted() {
            guard var item = set.items[fd] else { continue }
            guard sockets[fd] != nil else {
                // A closed descriptor leaves every epoll set (eventpoll_release).
                set.items[fd] = nil
                continue
            }
            let current = wakeups(fd)
            let enabled = item.events & ~EpollSet.flags != 0
            if enabled, let key = item.seen.key(to: current), key == 0 || key & item.events != 0 { item.ready = true }
            item.seen = current
            // A level-triggered item stays on the list while it is enabled (ep_send_events re-adds it).
            if enabled && item.events & (EpollSet.edgeTriggered | EpollSet.oneShot) == 0 { item.ready = true }
            if item.ready, reported.count < maximum {
                let events = pollMask(fd) & item.events & ~EpollSet.flags
                if events == 0 {
                    item.ready = false
                } else {
                    reported.append((fd, events))
                    if item.events & EpollSet.oneShot != 0 {
                        // EPOLLONESHOT: the item is disabled until EPOLL_CTL_MOD (ep_send_events: events &= EP_PRIVATE_BITS).
                        item.events &= EpollSet.flags
                        item.ready = false
                    } else if item.events & EpollSet.edgeTriggered != 0 {
                        item.ready = false
                    }
                }
            }
            set.items[fd] = item
        }
        epolls[epfd] = set
        let timeout = try integer(arguments, 3, default: 0)
        if reported.isEmpty && (blocking || timeout != 0) && expected > 0 { return .wouldBlock }
        if let first = reported.first, expected > 0, case .structure(let fields)? = arguments[safe: 1] {
            func field(_ name: String) -> Int64? {
                fields.first(where: { $0.name == .symbol(name) }).flatMap { ScriptSymbols.evaluate($0.value) }
            }
            if let events = field("events"), events != first.events {
                throw failure("epoll_wait reports events \(first.events) for fd \(first.fd)", expected: "events=\(events)", actual: "events=\(first.events)")
            }
            if let fd = field("fd"), fd != Int64(first.fd) {
                throw failure("epoll_wait reports fd \(first.fd)", expected: "fd=\(fd)", actual: "fd=\(first.fd)")
            }
        }
        return .value(Int64(reported.count))
    }
}
