import ArgumentParser
import TCPIP
import Testing
@testable import tcpip

/// The command line reaches the demo with the options the issue names, and rejects nonsense early.
@Suite struct CommandLineTests {
    @Test func defaultsAreTheDemosDefaults() throws {
        let command = try DemoFlowControl.parse([])
        #expect(command.options == FlowControlDemo.Options())
    }

    @Test func everyOptionArrives() throws {
        let command = try DemoFlowControl.parse([
            "--bytes", "5000", "--read-size", "10", "--read-interval-ms", "7", "--recv-buffer", "4096",
            "--send-buffer", "2048", "--mtu", "1280", "--ip", "6", "--verbose",
        ])
        var expected = FlowControlDemo.Options()
        expected.bytes = 5000
        expected.readSize = 10
        expected.readInterval = .milliseconds(7)
        expected.receiveBuffer = 4096
        expected.sendBuffer = 2048
        expected.mtu = 1280
        expected.ipVersion = 6
        expected.verbose = true
        #expect(command.options == expected)
    }

    @Test(arguments: [["--ip", "5"], ["--read-size", "0"], ["--mtu", "100"], ["--ip", "6", "--mtu", "1000"]])
    func nonsenseIsRejected(arguments: [String]) {
        #expect(throws: (any Error).self) { try DemoFlowControl.parse(arguments) }
    }

    @Test func demoWithoutASubcommandRunsFlowControl() throws {
        let command = try TCPIPCommand.parseAsRoot(["demo", "--bytes", "1"])
        #expect((command as? DemoFlowControl)?.bytes == 1)
    }

    @Test(arguments: [["--threads", "0"], ["--threads", "65"], ["--seconds", "0"]])
    func connectionRateNonsenseIsRejected(arguments: [String]) {
        #expect(throws: (any Error).self) { try BenchConnectionRate.parse(arguments) }
    }

    /// `--threads 2`: two pairs of stacks on two threads, each completing cycles on its own, each
    /// server keeping its closed connections in TIME-WAIT.
    @Test func connectionRateRunsOnePairPerThread() throws {
        #expect(try BenchConnectionRate.parse(["--threads", "2"]).threads == 2)
        let results = try BenchConnectionRate.runPairs(threads: 2, seconds: 0.2)
        #expect(results.count == 2)
        for result in results {
            #expect(result.connections > 0)
            #expect(result.serverConnectionsLeft > 0)
            #expect(result.segmentsSent >= UInt64(result.connections) * 6)
        }
    }

    #if os(Linux)
    /// The TUN commands pace and take Linux's RTO floor (RTO = SRTT + 200 ms at least) unless told
    /// not to; the library's defaults stay off (the simulator's figures).
    @Test func tunCommandsPaceAndTakeLinuxsRTOFloorUnlessTold() throws {
        let send = ["--tun", "tb", "--address", "198.18.3.2", "--to", "198.18.0.1:5001", "--seconds", "1"]
        let defaults = try Send.parse(send)
        #expect(defaults.device.pacing && defaults.device.minimumRTOAddsToSRTT)
        let off = try Send.parse(send + ["--no-pacing", "--no-minimum-rto-adds-to-srtt"])
        #expect(!off.device.pacing && !off.device.minimumRTOAddsToSRTT)
        #expect(!TCPConfiguration().pacing && !TCPConfiguration().minimumRTOAddsToSRTT)
    }
    #endif
}
