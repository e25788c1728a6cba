import NIOCore
import TCPIPWire
import Testing
@testable import TCPIP

/// The stack-wide memory budget (`StackConfiguration.memoryBudget`) and the out-of-order queue's
/// compaction: at every limit the stack prunes out-of-order data, then refuses new connections,
/// counts what it did, and the connections it already has still deliver every byte.
@Suite struct MemoryBudgetTests {
    static let client = IPAddress.v4(IPv4Address(198, 18, 0, 1))
    static let server = IPAddress.v4(IPv4Address(198, 18, 0, 2))
    static let port: UInt16 = 5001

    /// Two stacks joined by a lossless wire with no delay; the server accepts everything.
    final class Pair {
        let client: Stack
        let server: Stack
        let listener: ListenerID
        var now = Instant.zero + .seconds(1)
        var accepted: [ConnectionID] = []

        init(budget: Int?, refusal: MemoryBudgetRefusal = .reset) throws {
            var tcp = TCPConfiguration()
            tcp.receiveBufferSize = 64 * 1024
            tcp.sendBufferSize = 64 * 1024
            client = Stack(StackConfiguration(addresses: [MemoryBudgetTests.client], checksumOffload: true, seed: 3, tcp: tcp))
            var configuration = StackConfiguration(addresses: [MemoryBudgetTests.server], checksumOffload: true, seed: 4, tcp: tcp)
            configuration.memoryBudget = budget
            configuration.memoryBudgetRefusal = refusal
            server = Stack(configuration)
            listener = try server.listen(on: MemoryBudgetTests.port, backlog: 1024)
        }

        /// Delivers packets both ways until both are quiet; the server's memory is checked at every step.
        func exchange(check: (Stack) -> Void = { _ in }) {
            var progress = true
            while progress {
                progress = false
                while let datagram = client.nextPacketToSend() {
                    server.receive(datagram, now: now)
                    check(server)
                    progress = true
                }
                while let datagram = server.nextPacketToSend() {
                    client.receive(datagram, now: now)
                    progress = true
                }
                while let id = server.accept(listener) {
                    accepted.append(id)
                    progress = true
                }
            }
        }

        func advance(by amount: TimeAmount, check: (Stack) -> Void = { _ in }) {
            now = now + amount
            client.advanceTime(to: now)
            server.advanceTime(to: now)
            exchange(check: check)
        }

        func connect(_ count: Int) throws -> [ConnectionID] {
            let ids = try (0..<count).map { _ in try client.connect(to: Endpoint(MemoryBudgetTests.server, MemoryBudgetTests.port), now: now) }
            exchange()
            return ids
        }

        /// The server's connection for a client connection.
        func serverSide(of id: ConnectionID) -> ConnectionID? {
            guard let local = client.status(id)?.local else { return nil }
            return accepted.first { server.status($0)?.remote == local }
        }
    }

    static func pattern(from offset: Int, count: Int) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        for index in offset..<(offset + count) { buffer.writeInteger(UInt8(truncatingIfNeeded: index % 251)) }
        return buffer
    }

    /// Sends `total` bytes of the pattern on each connection while the server reads, then checks
    /// that every byte arrived, in order.
    static func transfer(
        _ pair: Pair, _ ids: [ConnectionID], total: Int, alreadySent: [Int]? = nil, check: (Stack) -> Void = { _ in }
    ) throws {
        var sent = alreadySent ?? [Int](repeating: 0, count: ids.count)
        var received = [[UInt8]](repeating: [], count: ids.count)
        for _ in 0..<10_000 {
            for (index, id) in ids.enumerated() where sent[index] < total {
                let chunk = min(16 * 1024, total - sent[index])
                sent[index] += try pair.client.send(id, pattern(from: sent[index], count: chunk), now: pair.now)
            }
            pair.exchange(check: check)
            for (index, id) in ids.enumerated() {
                guard let serverID = pair.serverSide(of: id) else { continue }
                while case .data(let data)? = try? pair.server.read(serverID, now: pair.now) {
                    received[index] += data.readableBytesView
                }
            }
            if received.allSatisfy({ $0.count == total }) { break }
            pair.advance(by: .milliseconds(50), check: check)
        }
        let expected = Array(pattern(from: 0, count: total).readableBytesView)
        for index in ids.indices {
            let intact = received[index] == expected
            #expect(intact, "connection \(index): \(received[index].count) of \(total) bytes, corrupted or short")
        }
    }

    /// The running totals the budget reads agree with a full recount of every queue.
    static func accountingIsExact(_ stack: Stack) -> Bool {
        stack.memoryInUse == stack.memory.buffers + stack.connectionCount * Stack.connectionEntryBytes
            + stack.halfOpenCount * Stack.halfOpenEntryBytes + stack.timeWaitCount * Stack.timeWaitEntryBytes
    }

    /// Four connections whose application has not read yet hold full receive windows; the budget is
    /// what they hold plus a sixteenth. New clients are turned away (RST, counted) while the four still
    /// deliver every byte; once the application has read, a new client gets in again.
    @Test(arguments: [MemoryBudgetRefusal.reset, .silence])
    func atTheBudgetNewConnectionsAreRefusedAndExistingOnesComplete(refusal: MemoryBudgetRefusal) throws {
        // A run with no budget to measure what the four connections pin with their windows full.
        func fill(_ pair: Pair) throws -> (ids: [ConnectionID], sent: [Int]) {
            let ids = try pair.connect(4)
            let sent = try ids.map { try pair.client.send($0, Self.pattern(from: 0, count: 64 * 1024), now: pair.now) }
            pair.exchange()
            return (ids, sent)
        }
        let probe = try Pair(budget: nil)
        _ = try fill(probe)
        let held = probe.server.memoryInUse
        #expect(held > 4 * 64 * 1024 / 2)

        let pair = try Pair(budget: held + held / 16, refusal: refusal)
        let (ids, sent) = try fill(pair)
        #expect(pair.server.memoryInUse == held)
        #expect(pair.accepted.count == 4)

        let refused = try pair.connect(3)
        for id in refused {
            if refusal == .reset {
                #expect(pair.client.status(id)?.error == .connectionRefused || pair.client.status(id) == nil)
            } else {
                #expect(pair.client.state(id) == .synSent)
            }
        }
        #expect(pair.accepted.count == 4)
        #expect(pair.server.counters.memoryBudgetRefusals == 3)
        #expect(pair.server.halfOpenCount == 0)
        #expect(pair.server.memoryInUse <= held + held / 16)

        // The four finish: 64 KiB already in flight, then 192 KiB more each, every byte checked.
        var maximum = 0
        try Self.transfer(pair, ids, total: 256 * 1024, alreadySent: sent) { maximum = max(maximum, $0.memoryInUse) }
        #expect(maximum <= held + held / 16)
        #expect(Self.accountingIsExact(pair.server))

        // Memory is free again: the next client gets in (and with silence, the ones that kept retrying).
        let later = try pair.connect(1)
        pair.advance(by: .seconds(4))
        #expect(pair.client.state(later[0]) == .established)
        if refusal == .silence {
            for id in refused { #expect(pair.client.state(id) == .established) }
        }
    }

    /// Twenty connections, each flooded with one-byte segments ahead of rcv.nxt, every one in a
    /// buffer of its own 4 KiB: per connection the queue limit would allow 512 KiB each, ten
    /// megabytes in all. The stack stays under its one-megabyte budget after every datagram (pruning
    /// and compacting), and afterwards each connection delivers its stream byte for byte.
    @Test func oneByteOutOfOrderFloodStaysUnderTheBudget() throws {
        let budget = 1024 * 1024
        let pair = try Pair(budget: budget)
        let ids = try pair.connect(20)
        #expect(pair.accepted.count == 20)
        var maximum = 0
        var exact = true
        let check: (Stack) -> Void = { stack in
            maximum = max(maximum, stack.memoryInUse)
            exact = exact && Self.accountingIsExact(stack)
        }
        for round in 0..<300 {
            for id in ids {
                guard let status = pair.client.status(id) else { continue }
                // The byte the client's stream will carry there, so whichever copy is kept is right.
                let offset = 2 + 2 * round
                var buffer = PacketBuffer.make(payloadCapacity: 4000)
                buffer.writeInteger(UInt8(truncatingIfNeeded: offset % 251))
                let header = TCPHeader(
                    sourcePort: status.local.port, destinationPort: status.remote.port,
                    sequenceNumber: SequenceNumber(status.sendNext) + offset,
                    acknowledgmentNumber: SequenceNumber(status.receiveNext), flags: .ack, window: 65535)
                header.prepend(to: &buffer, source: Self.client, destination: Self.server, computeChecksum: false)
                guard case .v4(let source) = Self.client, case .v4(let destination) = Self.server else { return }
                IPv4Header(source: source, destination: destination, protocolNumber: IPProtocolNumber.tcp,
                           payloadLength: buffer.readableBytes).prepend(to: &buffer)
                pair.server.receive(buffer, now: pair.now)
                check(pair.server)
                while pair.server.nextPacketToSend() != nil {}  // the duplicate ACKs go nowhere
            }
        }
        #expect(maximum <= budget)
        #expect(exact)
        #expect(pair.server.counters.memoryBudgetOutOfOrderPrunes > 0 || pair.server.counters.droppedReassemblyLimit > 0)

        try Self.transfer(pair, ids, total: 100 * 1024, check: check)
        #expect(maximum <= budget)
        #expect(exact)
    }
}

/// The out-of-order queue copies its pieces out of the big buffers they arrived in when they pin
/// far more than they hold (Linux's tcp_collapse_ofo_queue).
@Suite struct ReassemblyCompactionTests {
    static func piece(_ offset: Int, _ length: Int, capacity: Int = 4096) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: capacity)
        for index in offset..<(offset + length) { buffer.writeInteger(UInt8(truncatingIfNeeded: index % 251)) }
        return buffer
    }

    @Test func compactionMergesRunsAndKeepsEveryByteAndBlock() {
        let rcvNxt = SequenceNumber(0xFFFF_FF00)  // across the wrap
        var queue = ReassemblyQueue()
        // Runs of one-byte pieces 10..<20 and 30..<35, and a lone byte at 50, each in a 4 KiB buffer.
        for offset in [10, 12, 11, 13, 14, 15, 16, 17, 18, 19, 30, 31, 32, 33, 34, 50] {
            _ = queue.insert(Self.piece(offset, 1), at: rcvNxt + offset, fin: false, rcvNxt: rcvNxt, pinnedLimit: .max)
        }
        let blocksBefore = queue.sackBlocks(limit: 4)
        #expect(queue.pinnedBytes >= 16 * 4096)
        let compacted = queue.compact()
        #expect(compacted)
        #expect(queue.segmentCount == 3)
        #expect(queue.byteCount == 16)
        #expect(queue.pinnedBytes < 1024)
        #expect(queue.sackBlocks(limit: 4) == blocksBefore)
        // Fill the gaps and read it all back in order.
        _ = queue.insert(Self.piece(0, 51), at: rcvNxt, fin: false, rcvNxt: rcvNxt, pinnedLimit: .max)
        var bytes: [UInt8] = []
        var next = rcvNxt
        while let (chunk, _) = queue.popInOrder(rcvNxt: next) {
            bytes += chunk.readableBytesView
            next = next + chunk.readableBytes
        }
        #expect(bytes == (0..<51).map { UInt8($0 % 251) })
        #expect(queue.pinnedBytes == 0)
    }

    /// A queue at its pinned limit because of tiny pieces takes more after compacting instead of
    /// refusing (and the refusal still comes when the bytes themselves do not fit).
    @Test func overLimitCompactsBeforeRefusing() {
        let rcvNxt = SequenceNumber(1000)
        var queue = ReassemblyQueue()
        let limit = 64 * 1024
        var queued = 0
        for index in 0..<200 {
            let offset = 2 + 2 * index
            if queue.insert(Self.piece(offset, 1), at: rcvNxt + offset, fin: false, rcvNxt: rcvNxt, pinnedLimit: limit) == .queued {
                queued += 1
            }
            #expect(queue.pinnedBytes <= limit)
        }
        #expect(queued == 200)
        let outcome = queue.insert(Self.piece(1000, 1, capacity: 128 * 1024), at: rcvNxt + 1000, fin: false, rcvNxt: rcvNxt, pinnedLimit: limit)
        #expect(outcome == .overLimit)
    }
}

/// The send buffer's running count of pinned storage, which the budget reads on every segment,
/// agrees with a chunk-by-chunk recount through writes, retransmission slices that share a packed
/// chunk (so the next small write copies it), acknowledgments and an abort.
@Suite struct SendBufferAccountingTests {
    @Test func runningCountMatchesRecount() {
        var buffer = SendBuffer(capacity: 1 << 20)
        var held: [ByteBuffer] = []
        var random = SeededGenerator(seed: 9)
        for step in 0..<2000 {
            let size = step % 7 == 0 ? Int.random(in: 512...9000, using: &random) : Int.random(in: 1...300, using: &random)
            _ = buffer.append(ReassemblyCompactionTests.piece(0, size, capacity: size))
            if step % 5 == 0, buffer.count > 10 {
                held.append(buffer.bytes(at: buffer.count - 10, length: 10))  // a retransmission in flight
            }
            if step % 3 == 0 { buffer.removeFirst(min(buffer.count, Int.random(in: 0...400, using: &random))) }
            if held.count > 8 { held.removeFirst(4) }
            #expect(buffer.pinnedBytes == buffer.recountedPinnedBytes, "step \(step)")
        }
        buffer.removeAll()
        #expect(buffer.pinnedBytes == 0)
        #expect(buffer.recountedPinnedBytes == 0)
    }
}
