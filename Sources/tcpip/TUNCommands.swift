import ArgumentParser

#if os(Linux)
/// The commands that run the stack on a real TUN device (Linux only).
let tunCommands: [ParsableCommand.Type] = [Serve.self, Sink.self, Fetch.self, Send.self, GatewayCommand.self, Route.self]
#else
let tunCommands: [ParsableCommand.Type] = []
#endif
