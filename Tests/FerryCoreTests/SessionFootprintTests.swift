import XCTest
import Glibc
@testable import FerryCore

/// glibc's malloc_usable_size (malloc.h, which the Glibc module does not import): the bytes
/// a heap object really takes, size class included.
@_silgen_name("malloc_usable_size") private func mallocUsableSize(_ p: UnsafeMutableRawPointer?) -> Int

/// What an idle session costs in memory, so a field added to a session's types shows up here
/// (and in the README's per-session figure) rather than in a production heap.
final class SessionFootprintTests: XCTestCase {
    /// The instance size Swift's class metadata records: without ObjC interop, a UInt32 at byte
    /// 24 of the metadata (after kind, superclass, flags and the instance address point).
    static func instanceSize(_ type: AnyClass) -> Int {
        Int(unsafeBitCast(type, to: UnsafeRawPointer.self).load(fromByteOffset: 24, as: UInt32.self))
    }

    func testSessionTypesStayTheirSize() {
        let origin = ClientOrigin(source: SocketAddress(ipv4: "203.0.113.7", port: 1)!, destination: SocketAddress(ipv4: "198.51.100.1", port: 2)!,
                                  sender: SocketAddress(ipv4: "127.0.0.1", port: 3)!, replacesSender: true)
        let originHeap = withExtendedLifetime(origin) { mallocUsableSize(Unmanaged.passUnretained(origin).toOpaque()) }
        print("footprint: Session=\(SessionFootprintTests.instanceSize(Session.self)) ClientOrigin=\(SessionFootprintTests.instanceSize(ClientOrigin.self))"
              + " (malloc \(originHeap)) AttemptLog=\(MemoryLayout<AttemptLog>.size) Pump=\(MemoryLayout<Pump>.size)"
              + " ConnectionRecord=\(MemoryLayout<ConnectionRecord>.size)")
        // Every session: the first-byte stamp lives in AttemptLog's tail padding, so neither grows.
        XCTAssertEqual(SessionFootprintTests.instanceSize(Session.self), 352)
        XCTAssertLessThanOrEqual(MemoryLayout<AttemptLog>.size, 48)
        XCTAssertEqual(MemoryLayout<Pump>.size, 48)
        // Only sessions whose PROXY header replaced the client (or whose log prints the header):
        // the sender's key and port took the origin from 284 to 307 bytes, one malloc size class up.
        XCTAssertLessThanOrEqual(SessionFootprintTests.instanceSize(ClientOrigin.self), 312)
    }
}
