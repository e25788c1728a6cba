import Testing
import TCPIPWire
