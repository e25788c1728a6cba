import Logging
import NIOConcurrencyHelpers
import NIOCore
import TCPIP
import TCPIPNIO
import Testing

/// What the runtime tells a user through a `Logger`: start and stop at info, with the configuration
/// it runs; connection errors at debug, with the connection's addresses; nothing per segment.
@Suite struct LoggingTests {
    @Test func startConnectionErrorAndStopAreLogged() async throws {
        let clientLog = CapturedLog()
        let serverLog = CapturedLog()
        // In-process: with descriptors, the server's reader may see the client's close (EOF, "the TUN
        // device is gone") before its own stop, and log that as a failure.
        let pair = try await RuntimePair(
            clientLogger: clientLog.logger(level: .trace), serverLogger: serverLog.logger(level: .trace), inProcess: true)

        let started = try #require(serverLog.records.first { $0.message == "stack started" })
        #expect(started.level == .info)
        #expect(started.metadata["mtu"] == "1500")
        #expect(started.metadata["addresses"] == "198.18.0.2")

        // Nothing listens on port 9: the server answers the SYN with a RST, the client's connect fails.
        await #expect(throws: TCPError.self) {
            _ = try await TCPIPClientBootstrap(runtime: pair.client)
                .connect(to: Endpoint(RuntimePair.serverAddress, 9)).get()
        }
        let refused = try #require(clientLog.records.first { $0.message == "connection ended in error" })
        #expect(refused.level == .debug)
        #expect(refused.metadata["tcp.remote"]?.description.contains("198.18.0.2") == true)
        #expect(refused.metadata["tcp.remote"]?.description.contains(":9") == true)
        #expect(refused.metadata["tcp.local"]?.description.contains("198.18.0.1") == true)
        #expect(refused.metadata["error"] != nil)

        try await pair.shutdown()
        #expect(serverLog.records.last?.message == "stack stopped", "\(serverLog.records.last.map { "\($0.metadata)" } ?? "")")
        #expect(serverLog.records.last?.level == .info)
        #expect(!serverLog.records.contains { $0.level >= .error })
    }

    @Test func quietAtInfo() async throws {
        let clientLog = CapturedLog()
        let pair = try await RuntimePair(clientLogger: clientLog.logger(level: .info), inProcess: true)
        await #expect(throws: TCPError.self) {
            _ = try await TCPIPClientBootstrap(runtime: pair.client)
                .connect(to: Endpoint(RuntimePair.serverAddress, 9)).get()
        }
        try await pair.shutdown()
        #expect(clientLog.records.map(\.message) == ["stack started", "stack stopped"])
    }
}

/// A log handler that keeps what it is given, for tests.
final class CapturedLog: Sendable {
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata
    }

    private let storage = NIOLockedValueBox<[Record]>([])
    var records: [Record] { storage.withLockedValue { $0 } }

    func logger(level: Logger.Level) -> Logger {
        var logger = Logger(label: "test") { _ in Handler(log: self) }
        logger.logLevel = level
        return logger
    }

    fileprivate func append(_ record: Record) {
        storage.withLockedValue { $0.append(record) }
    }

    struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            log.append(Record(level: event.level, message: event.message.description, metadata: metadata.merging(event.metadata ?? [:]) { $1 }))
        }
    }
}
