import ArgumentParser
import TCPIP
import TCPIPLinks
print("tcpip")
