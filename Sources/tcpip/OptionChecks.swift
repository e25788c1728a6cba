import ArgumentParser

/// The checks commands share, each failing with one line that says the range and why, so a person
/// can act on it: `--mtu 576 --ip 6: IPv6 needs an MTU of at least 1280 (RFC 8200 §5)`.
enum OptionChecks {
    /// `--ip`: 4 or 6.
    static func ipVersion(_ ip: Int) throws {
        guard ip == 4 || ip == 6 else { throw ValidationError("--ip \(ip): the IP version is 4 or 6") }
    }

    /// `--mtu` for IP version `ip`: at least what every host of that version must handle, and at most
    /// what a datagram's length field can say.
    static func mtu(_ mtu: Int, ip: Int) throws {
        if ip == 6 {
            guard mtu >= 1280 else {
                throw ValidationError("--mtu \(mtu) --ip 6: IPv6 needs an MTU of at least 1280 (RFC 8200 §5)")
            }
        } else {
            guard mtu >= 576 else {
                throw ValidationError(
                    "--mtu \(mtu): at least 576, the datagram every IPv4 host must accept (RFC 791, RFC 1122 §3.3.3)")
            }
        }
        guard mtu <= 65_535 else {
            throw ValidationError("--mtu \(mtu): at most 65535, the largest datagram an IP length field can describe")
        }
    }

    /// A probability given as a fraction: 0 (never) to 1 (always).
    static func probability(_ value: Double, option: String) throws {
        guard (0...1).contains(value) else {
            throw ValidationError("--\(option) \(value): a probability, from 0 (never) to 1 (always); 0.05 is 5%")
        }
    }

    /// A count or duration that must be above zero.
    static func positive<Value: Numeric & Comparable>(_ value: Value, option: String, what: String) throws {
        guard value > 0 else { throw ValidationError("--\(option) \(value): \(what) must be more than 0") }
    }

    /// A count that may be zero but not negative.
    static func nonNegative(_ value: Int, option: String, what: String) throws {
        guard value >= 0 else { throw ValidationError("--\(option) \(value): \(what) cannot be negative") }
    }

    /// A duration in seconds in `range`, with the reason for the bounds.
    static func seconds(_ value: Double, _ range: ClosedRange<Double>, option: String, because reason: String) throws {
        guard range.contains(value) else {
            throw ValidationError(
                "--\(option) \(value): must be \(range.lowerBound.formatted)...\(range.upperBound.formatted) seconds (\(reason))")
        }
    }

    /// `--path-mtu`: at least the minimum of IP version `ip`, at most the link's `--mtu`.
    static func pathMTU(_ pathMTU: Int, linkMTU: Int, ip: Int) throws {
        let minimum = ip == 6 ? 1280 : 576
        guard pathMTU >= minimum else {
            throw ValidationError(ip == 6
                ? "--path-mtu \(pathMTU) --ip 6: IPv6 needs a path MTU of at least 1280 (RFC 8200 §5)"
                : "--path-mtu \(pathMTU): at least 576, the datagram every IPv4 host must accept (RFC 791, RFC 1122 §3.3.3)")
        }
        guard pathMTU <= linkMTU else {
            throw ValidationError("--path-mtu \(pathMTU): at most --mtu \(linkMTU), the link the router forwards from")
        }
    }

    /// A value in `range`, with the reason for the bounds.
    static func within(_ value: Int, _ range: ClosedRange<Int>, option: String, because reason: String) throws {
        guard range.contains(value) else {
            throw ValidationError("--\(option) \(value): must be \(range.lowerBound)...\(range.upperBound) (\(reason))")
        }
    }
}

extension Double {
    /// 5, 0.5, 3600: without a trailing `.0`, as a person writes it.
    fileprivate var formatted: String {
        self == rounded() && abs(self) < 1e15 ? String(Int64(self)) : String(self)
    }
}
