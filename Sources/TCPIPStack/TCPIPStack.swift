// One import for an app on the stack: `import TCPIPStack` brings the addresses (TCPIPWire), the
// sans-IO stack and its configuration (TCPIP), the runtime, bootstraps and packet sources
// (TCPIPNIO), NIO's channels and event loops (NIOCore, NIOPosix), and on Linux the TUN device
// (TCPIPLinks).
@_exported import NIOCore
@_exported import NIOPosix
@_exported import TCPIP
@_exported import TCPIPNIO
@_exported import TCPIPWire

#if os(Linux)
@_exported import TCPIPLinks
#endif
