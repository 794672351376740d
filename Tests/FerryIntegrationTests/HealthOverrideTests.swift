import XCTest
import Glibc

/// `set server U/S health up|down` over the admin socket forces the probe's verdict, and the
/// probes go on judging from there, as in HAProxy (which sets the check's health counter to
/// fully up or to zero): a healthy server forced down comes back after `passes` good probes,
/// a dead one forced up goes down again after `fails` bad ones. Neither may stick.
final class HealthOverrideTests: IntegrationCase {
    func testForcedHealthIsJudgedAgainByTheNextProbes() throws {
        let a = try backend("a")
        let deadPort = try Net.freePort()
        let f = try ferry("""
            upstream u {
                server 127.0.0.1:\(a.port) name=a;
                server 127.0.0.1:\(deadPort) name=b;
                health_check interval=200ms fails=2 passes=2 timeout=1s;
            }
            server { listen LISTEN; proxy_pass u; proxy_connect_timeout 1s; proxy_timeout 30s; }
            """, main: "admin_socket @DIR@/admin.sock;")
        XCTAssertNotNil(f.waitForState("b", field: "health", new: "down", timeout: 5), f.stderr)

        // a answers every probe; forced down, the probes bring it back.
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set server u/a health down"), "\n")
        let back = f.waitForState("a", field: "health", new: "up", timeout: 5)
        XCTAssertNotNil(back, "a passes every probe but stays down after 'health down':\n\(f.stderr)")
        XCTAssertEqual(back?["cause"] as? String, "health_check")
        XCTAssertEqual(try bannerThrough(f.listenPort), "a")

        // b refuses every probe; forced up, the probes take it down again.
        let bDown = f.stateChanges("b").count
        XCTAssertEqual(try AdminSocket.command(f.adminPath, "set server u/b health up"), "\n")
        let again = f.waitForState("b", field: "health", new: "down", after: bDown, timeout: 5)
        XCTAssertNotNil(again, "b fails every probe but stays up after 'health up':\n\(f.stderr)")
        XCTAssertEqual(again?["checks"] as? Int, 2)
    }
}
