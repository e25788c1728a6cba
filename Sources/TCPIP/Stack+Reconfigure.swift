/// Changing a running stack's TCP configuration: the values an administrator may change while
/// connections exist (Linux's sysctls set at run time), and what a change means for them.
extension TCPConfiguration {
    /// The values of `TCPConfiguration` that `Stack.reconfigure` may change after the stack is made.
    /// Each is read where Linux reads its sysctl, so a change applies from that point on:
    ///
    /// - `timestamps`, `windowScaling`, `selectiveAcknowledgments`, `explicitCongestionNotification`:
    ///   read when a SYN or SYN-ACK is built (Linux's tcp_syn_options / tcp_synack_options,
    ///   tcp_select_initial_window, tcp_ecn_send_syn read net.ipv4.tcp_timestamps, tcp_sack,
    ///   tcp_window_scaling, tcp_ecn there), so connections already open keep what their handshake
    ///   negotiated and new ones use the new value.
    /// - `maximumSYNRetransmissions`: a connection takes it at OPEN; a passive open's SYN-ACK
    ///   retransmissions read it at each retransmission (Linux's tcp_syn_retries and
    ///   tcp_synack_retries are read by the timers, tcp_write_timeout / inet_rtx_syn_ack).
    /// - `fastOpen`: read at each Fast Open OPEN (tcp_sendmsg_fastopen reads net.ipv4.tcp_fastopen:
    ///   EOPNOTSUPP when the client bit is off) and at each SYN to a listener (tcp_try_fastopen); a
    ///   new `key` is the key of every cookie given or checked from then on (tcp_fastopen_reset_cipher),
    ///   and `clientCacheLimit` bounds the cookie cache from then on.
    ///
    /// - `acceptsAnyResetInWindow`, `resetsOnSYNInWindow`, `acceptsSYNWithFIN`, `acceptsSYNACKWithFIN`,
    ///   `closedPortResets`: read for each segment that arrives, as FreeBSD reads insecure_rst,
    ///   insecure_syn, drop_synfin and blackhole in tcp_input — open connections included.
    ///
    /// Everything else (buffer sizes, timers' bounds, the option layout) sizes or shapes state when a
    /// connection is made and is not changed under it: make a new stack for those.
    public struct Reconfigurable: Sendable, Hashable {
        /// `TCPConfiguration.timestamps`.
        public var timestamps: Bool
        /// `TCPConfiguration.windowScaling`.
        public var windowScaling: Bool
        /// `TCPConfiguration.selectiveAcknowledgments`.
        public var selectiveAcknowledgments: Bool
        /// `TCPConfiguration.explicitCongestionNotification`.
        public var explicitCongestionNotification: ExplicitCongestionNotification
        /// `TCPConfiguration.maximumSYNRetransmissions`.
        public var maximumSYNRetransmissions: Int
        /// `TCPConfiguration.fastOpen`.
        public var fastOpen: FastOpen
        /// `TCPConfiguration.acceptsAnyResetInWindow`.
        public var acceptsAnyResetInWindow: Bool
        /// `TCPConfiguration.resetsOnSYNInWindow`.
        public var resetsOnSYNInWindow: Bool
        /// `TCPConfiguration.acceptsSYNWithFIN`.
        public var acceptsSYNWithFIN: Bool
        /// `TCPConfiguration.acceptsSYNACKWithFIN`.
        public var acceptsSYNACKWithFIN: Bool
        /// `TCPConfiguration.closedPortResets`.
        public var closedPortResets: ClosedPortResets
    }

    /// This configuration's values that may change while a stack runs.
    public var reconfigurable: Reconfigurable {
        get {
            Reconfigurable(
                timestamps: timestamps, windowScaling: windowScaling, selectiveAcknowledgments: selectiveAcknowledgments,
                explicitCongestionNotification: explicitCongestionNotification,
                maximumSYNRetransmissions: maximumSYNRetransmissions, fastOpen: fastOpen,
                acceptsAnyResetInWindow: acceptsAnyResetInWindow, resetsOnSYNInWindow: resetsOnSYNInWindow,
                acceptsSYNWithFIN: acceptsSYNWithFIN, acceptsSYNACKWithFIN: acceptsSYNACKWithFIN,
                closedPortResets: closedPortResets)
        }
        set {
            timestamps = newValue.timestamps
            windowScaling = newValue.windowScaling
            selectiveAcknowledgments = newValue.selectiveAcknowledgments
            explicitCongestionNotification = newValue.explicitCongestionNotification
            maximumSYNRetransmissions = newValue.maximumSYNRetransmissions
            fastOpen = newValue.fastOpen
            acceptsAnyResetInWindow = newValue.acceptsAnyResetInWindow
            resetsOnSYNInWindow = newValue.resetsOnSYNInWindow
            acceptsSYNWithFIN = newValue.acceptsSYNWithFIN
            acceptsSYNACKWithFIN = newValue.acceptsSYNACKWithFIN
            closedPortResets = newValue.closedPortResets
        }
    }
}

extension Stack {
    /// Changes the values of the TCP configuration that may change while the stack runs
    /// (`TCPConfiguration.Reconfigurable` says which, and from when each applies), as an
    /// administrator's `sysctl -w net.ipv4.tcp_…` changes a running Linux:
    ///
    /// ```swift
    /// stack.reconfigure { $0.timestamps = false }      // SYNs from now on carry no timestamps
    /// stack.reconfigure { $0.fastOpen.client = false } // Fast Open OPENs now fail
    /// ```
    ///
    /// Connections accepted with a configuration of their own (`accept(_:configuration:now:)`) keep it.
    public func reconfigure(_ change: (inout TCPConfiguration.Reconfigurable) -> Void) {
        var values = configuration.tcp.reconfigurable
        change(&values)
        let oldKey = configuration.tcp.fastOpen.key
        storedConfiguration.tcp.reconfigurable = values
        // Every TCB points at this one copy (SharedTCPConfiguration); they read it when they build
        // a SYN or SYN-ACK, so open connections keep what they negotiated.
        sharedTCPConfiguration.pointer.pointee.reconfigurable = values
        if let key = values.fastOpen.key, key != oldKey { fastOpenState.key = key }
        io.fastOpenCookies.limit = values.fastOpen.clientCacheLimit
    }

    /// Forgets every cached Fast Open cookie and the MSS beside it (Linux's
    /// `ip tcp_metrics flush all`, which empties the cache tcp_fastopen_cache_get reads): the next
    /// Fast Open OPEN to any server asks for a cookie again (RFC 7413 §4.1.3).
    public func flushFastOpenCookies() {
        io.fastOpenCookies.removeAll()
    }
}
