import XCTest
@testable import FerryCore

/// What health checking reads from the configuration.
final class HealthConfigTests: XCTestCase {
    func testOnMarkedDown() throws {
        let c = try load("upstream b { server 127.0.0.1:1; on_marked_down shutdown_sessions; }\nserver { listen 80; proxy_pass b; }").config
        XCTAssertTrue(c.upstreams[0].shutdownSessionsOnDown)
        XCTAssertTrue(ConfigRenderer.render(c).contains("on_marked_down shutdown_sessions;"), ConfigRenderer.render(c))
        let plain = try load("upstream b { server 127.0.0.1:1; }\nserver { listen 80; proxy_pass b; }").config
        XCTAssertFalse(plain.upstreams[0].shutdownSessionsOnDown)
        XCTAssertThrowsError(try load("upstream b { server 127.0.0.1:1; on_marked_down shutdown; }\nserver { listen 80; proxy_pass b; }")) {
            XCTAssertTrue("\($0)".contains("invalid parameter \"shutdown\""), "\($0)")
        }
    }

    func testAgentSettingsPerServer() throws {
        let c = try load("""
            upstream b {
                server 127.0.0.1:1 name=x;
                server 127.0.0.1:2 name=y agent_port=9800;
                agent_check port=9707 interval=250ms send="be/x\\n";
            }
            upstream c { server 127.0.0.1:3 agent_port=9801; server 127.0.0.1:4; }
            server { listen 80; proxy_pass b; }
            """).config
        let b = c.upstreams[0], u = c.upstreams[1]
        XCTAssertEqual(HealthChecks.agentConfig(b, b.servers[0])?.port, 9707)
        XCTAssertEqual(HealthChecks.agentConfig(b, b.servers[1])?.port, 9800)
        XCTAssertEqual(HealthChecks.agentConfig(b, b.servers[1])?.interval, Duration(milliseconds: 250))
        // agent_port= alone turns the agent on for that server, with the defaults.
        XCTAssertEqual(HealthChecks.agentConfig(u, u.servers[0]), AgentCheckConfig(port: 9801))
        XCTAssertNil(HealthChecks.agentConfig(u, u.servers[1]))
        XCTAssertEqual(HealthChecks.descriptorsNeeded(c), 3)
        XCTAssertEqual(AgentProbe.unescape(b.agentCheck!.send!), Array("be/x\n".utf8))
    }
}
