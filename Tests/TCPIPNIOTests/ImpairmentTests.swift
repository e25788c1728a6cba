import TCPIPNIO
import Testing

@Suite struct ImpairmentTests {
    @Test func parsesNetemWords() throws {
        let model = try #require(Impairment(parsing: "loss=5%,reorder=10%,duplicate=1%,corrupt=0.1%,delay=10ms"))
        #expect(model.loss == 0.05)
        #expect(model.reorder == 0.1)
        #expect(model.duplicate == 0.01)
        #expect(abs(model.corrupt - 0.001) < 1e-12)
        #expect(model.delay == .milliseconds(10))
    }

    @Test(arguments: ["loss=5", "loss=101%", "delay=10", "jitter=1ms", "loss"])
    func rejectsWhatNetemWouldNot(_ text: String) {
        #expect(Impairment(parsing: text) == nil)
    }
}
