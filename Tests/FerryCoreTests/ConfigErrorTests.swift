import XCTest
@testable import FerryCore

/// Malformed inputs and the exact message (with file:line:column) ferry must give for each.
final class ConfigErrorTests: XCTestCase {
    static let cases: [(input: String, message: String)] = [
        // structure (lexer and parser)
        ("}", #"unexpected "}" in t.conf:1:1"#),
        ("worker_processes 1 }", #"unexpected "}" in t.conf:1:20"#),
        (";", #"unexpected ";" in t.conf:1:1"#),
        ("{ }", #"unexpected "{" in t.conf:1:1"#),
        ("worker_processes 1", #"unexpected end of file, expecting ";" or "}" in t.conf:1:19"#),
        ("stream {\n  upstream b {\n    server 127.0.0.1:1;\n  }\n", #"unexpected end of file, expecting "}" in t.conf:5:1"#),
        ("log_format x \"abc;\n", #"unterminated quoted string in t.conf:1:14"#),
        ("error_log 'a\\'b;", #"unterminated quoted string in t.conf:1:11"#),
        ("error_log \"a\"b;", #"unexpected "b" in t.conf:1:14"#),
        (String(repeating: "a{", count: 100), #"blocks nested too deeply (more than 64) in t.conf:1:130"#),
        // names
        ("lisen 80;", #"unknown directive "lisen" in t.conf:1:1; did you mean "listen"?"#),
        ("server {\n    lisen 12000;\n}", #"unknown directive "lisen" in t.conf:2:5; did you mean "listen"?"#),
        ("upstream b {\n  least_con;\n}", #"unknown directive "least_con" in t.conf:2:3; did you mean "least_conn"?"#),
        ("frobnicate;", #"unknown directive "frobnicate" in t.conf:1:1"#),
        ("server {\n  listen 1;\n  proxy_pass 127.0.0.1:2;\n  proxy_read_timeout 5s;\n}",
         #"unknown directive "proxy_read_timeout" in t.conf:4:3; "proxy_read_timeout" is an http directive; in a stream server use "proxy_timeout""#),
        ("proxy_send_timeout 5s;",
         #"unknown directive "proxy_send_timeout" in t.conf:1:1; "proxy_send_timeout" is an http directive; in a stream server use "proxy_timeout""#),
        ("keepalive_timeout 65;",
         #"unknown directive "keepalive_timeout" in t.conf:1:1; "keepalive_timeout" is an http directive; in a stream server use "proxy_timeout" for idle sessions or "listen ... so_keepalive=on" for TCP keepalive"#),
        ("server { location / { } }",
         #"unknown directive "location" in t.conf:1:10; "location" is an http directive; a stream server has no locations, put "proxy_pass" directly in "server""#),
        ("http { }", #"unknown directive "http" in t.conf:1:1; "http" blocks are not supported; ferry balances TCP streams, use "stream""#),
        // contexts, arity, duplicates
        ("stream { worker_processes 2; }", #""worker_processes" directive is not allowed here in t.conf:1:10"#),
        ("proxy_pass b;", #""proxy_pass" directive is not allowed here in t.conf:1:1"#),
        ("stream { }\nupstream b { server 127.0.0.1:1; }",
         #""upstream" directive is not allowed here in t.conf:2:1; this file has a "stream" block, put it inside"#),
        ("upstream b { least_conn x; }", #"invalid number of arguments in "least_conn" directive in t.conf:1:14"#),
        ("worker_processes;", #"invalid number of arguments in "worker_processes" directive in t.conf:1:1"#),
        ("stream;", #"directive "stream" has no opening "{" in t.conf:1:1"#),
        ("proxy_timeout 5s { }", #"directive "proxy_timeout" is not terminated by ";" in t.conf:1:1"#),
        ("proxy_timeout 1s;\nproxy_timeout 2s;", #""proxy_timeout" directive is duplicate in t.conf:2:1"#),
        ("stream { }\nstream { }", #""stream" directive is duplicate in t.conf:2:1"#),
        ("upstream b { server 127.0.0.1:1; }\nupstream b { server 127.0.0.1:2; }", #"duplicate upstream "b" in t.conf:2:10"#),
        ("server { listen 80; proxy_pass 127.0.0.1:1; }\nserver { listen *:80; proxy_pass 127.0.0.1:2; }",
         #"duplicate "*:80" address and port pair in t.conf:2:17"#),
        ("server { listen 80; proxy_pass 127.0.0.1:1; }\nserver { listen 127.0.0.1:80; proxy_pass 127.0.0.1:2; }",
         #""127.0.0.1:80" overlaps "80" of t.conf:1:17 in t.conf:2:17; ferry binds each listen address itself; keep only the wildcard address or only the specific ones, or add "reuseport" to both"#),
        ("server { listen [::1]:80; listen [::]:80; proxy_pass 127.0.0.1:1; }",
         #""[::]:80" overlaps "[::1]:80" of t.conf:1:17 in t.conf:1:34; ferry binds each listen address itself; keep only the wildcard address or only the specific ones, or add "reuseport" to both"#),
        ("metrics_listen 127.0.0.1:9100;\nserver { listen 127.0.0.1:9100; proxy_pass 127.0.0.1:1; }",
         #""metrics_listen" address "127.0.0.1:9100" is also bound by "listen 127.0.0.1:9100" (t.conf:2:17) in t.conf:1:1; give metrics_listen a port of its own"#),
        ("metrics_listen 127.0.0.1:9100;\nserver { listen 9100; proxy_pass 127.0.0.1:1; }",
         #""metrics_listen" address "127.0.0.1:9100" is also bound by "listen 9100" (t.conf:2:17) in t.conf:1:1; give metrics_listen a port of its own"#),
        // parameters and values
        ("upstream b { server 127.0.0.1:1 wieght=2; }", #"invalid parameter "wieght=2" in t.conf:1:33; did you mean "weight=2"?"#),
        ("upstream b { server 127.0.0.1:1 bakup; }", #"invalid parameter "bakup" in t.conf:1:33; did you mean "backup"?"#),
        ("upstream b { server 127.0.0.1:1 weight=0; }",
         #"invalid parameter "weight=0" in t.conf:1:33; weight must be 1 or more; use "down" to take a server out"#),
        ("upstream b { server 127.0.0.1:1 weight=1000001; }",
         #"invalid parameter "weight=1000001" in t.conf:1:33; weight must be at most 1000000"#),
        ("upstream b { server 127.0.0.1:1 weight=99999999999999999999; }",
         #"invalid parameter "weight=99999999999999999999" in t.conf:1:33; weight must be at most 1000000"#),
        ("upstream b {\n  server 127.0.0.1:1 name=x;\n  server 127.0.0.1:2 name=x;\n}",
         #"duplicate server name "x" in t.conf:3:22; t.conf:2:3 already answers to it; give each server of an upstream its own "name=""#),
        ("upstream b {\n  server 127.0.0.1:1;\n  server 127.0.0.1:2 name=127.0.0.1:1;\n}",
         #"duplicate server name "127.0.0.1:1" in t.conf:3:22; t.conf:2:3 already answers to it; give each server of an upstream its own "name=""#),
        ("upstream b {\n  server 127.0.0.1:2 name=127.0.0.1:1;\n  server 127.0.0.1:1;\n}",
         #"duplicate server name "127.0.0.1:1" in t.conf:3:10; t.conf:2:3 already answers to it; give each server of an upstream its own "name=""#),
        ("upstream b { server 127.0.0.1:1 fail_timeout=10x; }", #"invalid parameter "fail_timeout=10x" in t.conf:1:33"#),
        ("upstream b {\n  hash $remote_addr;\n  server 127.0.0.1:1;\n  server 127.0.0.1:2 backup;\n}",
         #"invalid parameter "backup" in t.conf:4:22; "hash" does not support backup servers"#),
        ("upstream b { server 127.0.0.1:1 backup; random two; server 127.0.0.1:2; }",
         #"invalid parameter "backup" in t.conf:1:33; "random" does not support backup servers"#),
        ("upstream b { hash $request_uri; server 127.0.0.1:1; }",
         #"invalid hash key "$request_uri" in t.conf:1:19; ferry hashes the client address only, use "$remote_addr""#),
        ("upstream b { random two least_time=connect; server 127.0.0.1:1; }", #"invalid parameter "least_time=connect" in t.conf:1:25"#),
        ("upstream b { server 127.0.0.1:1; agent_check interval=5s; }", #""agent_check" directive requires a "port=" parameter in t.conf:1:34"#),
        ("upstream b { server 127.0.0.1:1; health_check intervall=5s; }",
         #"invalid parameter "intervall=5s" in t.conf:1:47; did you mean "interval=5s"?"#),
        ("proxy_timeout 5x;", #""proxy_timeout" directive invalid value "5x" in t.conf:1:15"#),
        ("proxy_timeout 1M;",
         #""proxy_timeout" directive invalid value "1M" in t.conf:1:15; "y" and "M" are only for values in whole seconds; write days, as "365d" or "30d""#),
        ("upstream b { server 127.0.0.1:1; health_check interval=1y; }",
         #"invalid parameter "interval=1y" in t.conf:1:47; "y" and "M" are only for values in whole seconds; write days, as "365d" or "30d""#),
        ("upstream b { server 127.0.0.1:1; agent_check port=1 interval=0; }", #"invalid parameter "interval=0" in t.conf:1:53"#),
        ("upstream b { server 127.0.0.1:1 fail_timeout=500ms; }",
         #"invalid parameter "fail_timeout=500ms" in t.conf:1:33; this value is in whole seconds, "ms" is not allowed"#),
        ("proxy_timeout 30m1h;", #""proxy_timeout" directive invalid value "30m1h" in t.conf:1:15"#),
        ("proxy_next_upstream maybe;", #"invalid value "maybe" in "proxy_next_upstream" directive, it must be "on" or "off" in t.conf:1:21"#),
        ("limit_conn_zone $binary_remote_addr zone=one:10x;", #"invalid zone size "10x" in t.conf:1:37"#),
        ("limit_conn_zone $binary_remote_addr zone=one:1k;", #"zone "one" is too small in t.conf:1:37"#),
        ("limit_conn_zone $server_addr zone=one:1m;",
         #"invalid key "$server_addr" in "limit_conn_zone" directive in t.conf:1:17; ferry limits by client address only, use "$binary_remote_addr""#),
        ("limit_conn_rate 10r/h;", #"invalid rate "10r/h" in t.conf:1:17; write it as "10r/s" or "30r/m""#),
        ("limit_conn_rate 0r/s;", #"invalid rate "0r/s" in t.conf:1:17; write it as "10r/s" or "30r/m""#),
        ("limit_conn_rate 10r/s brust=5;", #"invalid parameter "brust=5" in t.conf:1:23; did you mean "burst=5"?"#),
        ("limit_conn_rate 10r/s burst=-1;", #"invalid burst value "-1" in t.conf:1:23"#),
        ("limit_conn_rate off burst=2;", #"invalid parameter "burst=2" in t.conf:1:21"#),
        ("limit_conn_rate 1r/s;\nlimit_conn_rate 2r/s;", #""limit_conn_rate" directive is duplicate in t.conf:2:1"#),
        ("proxy_protocol_version 3;", #"invalid value "3" in "proxy_protocol_version" directive, it must be "1" or "2" in t.conf:1:24"#),
        ("proxy_protocol_timeout 0;", #""proxy_protocol_timeout" directive invalid value "0" in t.conf:1:24"#),
        ("proxy_socket_keepalive yes;",
         #"invalid value "yes" in "proxy_socket_keepalive" directive, it must be "on", "off" or "[idle]:[interval]:[count]" in t.conf:1:24"#),
        ("tcp_user_timeout 30d;", #""tcp_user_timeout" directive invalid value "30d" in t.conf:1:18"#),
        ("tcp_user_timeout 5x;", #""tcp_user_timeout" directive invalid value "5x" in t.conf:1:18"#),
        ("upstream b { server 127.0.0.1:1; proxy_protocol_version 2; }", #""proxy_protocol_version" directive is not allowed here in t.conf:1:34"#),
        ("error_log /tmp/x warning;", #"invalid log level "warning" in t.conf:1:18; did you mean "warn"?"#),
        ("access_log /tmp/a flush=5s;", #"no buffer is defined for access_log "/tmp/a" in t.conf:1:1"#),
        // nginx's syslog:/memory: targets, which ferry would otherwise take as file names
        ("access_log syslog:server=127.0.0.1:514 main;",
         #""access_log" to syslog ("syslog:server=127.0.0.1:514") is not supported by ferry in t.conf:1:12; ferry logs to files only; write a file path; a FIFO works too, so a reader such as "logger -t ferry < FIFO" can pass the lines to syslog"#),
        ("error_log syslog:server=127.0.0.1:514,tag=ferry warn;",
         #""error_log" to syslog ("syslog:server=127.0.0.1:514,tag=ferry") is not supported by ferry in t.conf:1:11; ferry logs to files only; write a file path, or "stderr" (the default; under systemd it reaches the journal)"#),
        ("stream { error_log memory:1m debug; }",
         #""error_log" to memory ("memory:1m") is not supported by ferry in t.conf:1:20; ferry logs to files only; write a file path, or "stderr" (the default; under systemd it reaches the journal)"#),
        ("allow 10.0.0.0/33;", #"invalid parameter "10.0.0.0/33" in t.conf:1:7"#),
        ("admin_socket /tmp/a mode=0999;", #"invalid parameter "mode=0999" in t.conf:1:21"#),
        ("log_format j escape=yaml '$remote_addr';", #"unknown log format escaping "yaml", must be "default", "json" or "none" in t.conf:1:14"#),
        // proxy_bind
        ("proxy_bind 127.0.0.2 transparent;",
         #""transparent" in "proxy_bind" is not supported by ferry in t.conf:1:22; it needs IP_TRANSPARENT (CAP_NET_ADMIN) and routing that brings the servers' replies back to this host; ferry connects from its own addresses only, remove "transparent""#),
        ("proxy_bind 127.0.0.2 transparnet;", #"invalid parameter "transparnet" in t.conf:1:22; did you mean "transparent"?"#),
        ("proxy_bind $remote_addr;",
         #"variables in "proxy_bind" are not supported by ferry in t.conf:1:12; write one of this host's addresses, e.g. "proxy_bind 192.0.2.10;" (binding to the client's $remote_addr would also need "transparent")"#),
        ("proxy_bind localhost;",
         #"invalid address "localhost" in "proxy_bind" directive in t.conf:1:12; write an IPv4 address or an IPv6 address, optionally with a port ("192.0.2.10", "[2001:db8::10]:0"), or "off"; host names are not resolved here"#),
        ("proxy_bind 127.0.0.2:65536;",
         #"invalid address "127.0.0.2:65536" in "proxy_bind" directive in t.conf:1:12; write an IPv4 address or an IPv6 address, optionally with a port ("192.0.2.10", "[2001:db8::10]:0"), or "off"; host names are not resolved here"#),
        ("proxy_bind [::1;",
         #"invalid address "[::1" in "proxy_bind" directive in t.conf:1:12; write an IPv4 address or an IPv6 address, optionally with a port ("192.0.2.10", "[2001:db8::10]:0"), or "off"; host names are not resolved here"#),
        ("proxy_bind 127.0.0.2;\nproxy_bind off;", #""proxy_bind" directive is duplicate in t.conf:2:1"#),
        ("upstream b { server 127.0.0.1:1; proxy_bind 127.0.0.2; }", #""proxy_bind" directive is not allowed here in t.conf:1:34"#),
        ("upstream b { server 127.0.0.1:1; server [::1]:2; }\nserver { listen 1; proxy_pass b; proxy_bind 127.0.0.2; }",
         #""proxy_bind 127.0.0.2" is IPv4, but server "[::1]:2" of upstream "b" (t.conf:1:34) is IPv6 in t.conf:2:34; a connection can only come from an address of the server's family; give the server block that proxies there "proxy_bind off;" or an address of that family, and keep servers of one family per upstream"#),
        ("proxy_bind [::1];\nserver { listen 1; proxy_pass 127.0.0.1:2; }",
         #""proxy_bind [::1]" is IPv6, but proxy_pass "127.0.0.1:2" is IPv4 in t.conf:1:1; a connection can only come from an address of the server's family; give the server block that proxies there "proxy_bind off;" or an address of that family, and keep servers of one family per upstream"#),
        ("server { listen 1; proxy_pass unix:/tmp/s; proxy_bind 127.0.0.2; }",
         #""proxy_bind 127.0.0.2" is IPv4, but proxy_pass "unix:/tmp/s" is a unix socket in t.conf:1:44; a connection can only come from an address of the server's family; give the server block that proxies there "proxy_bind off;" or an address of that family, and keep servers of one family per upstream"#),
        // proxy_upload_rate, proxy_download_rate
        ("proxy_download_rate 100kb;",
         #""proxy_download_rate" directive invalid value "100kb" in t.conf:1:21; write a rate in bytes per second, optionally with k or m ("100k" is 102400), or 0 for no limit"#),
        ("proxy_upload_rate -1;",
         #""proxy_upload_rate" directive invalid value "-1" in t.conf:1:19; write a rate in bytes per second, optionally with k or m ("100k" is 102400), or 0 for no limit"#),
        ("proxy_upload_rate $rate;", #"variables in "proxy_upload_rate" are not supported by ferry in t.conf:1:19; write a fixed rate in bytes per second, e.g. "proxy_upload_rate 100k;""#),
        ("proxy_download_rate 1k;\nproxy_download_rate 2k;", #""proxy_download_rate" directive is duplicate in t.conf:2:1"#),
        ("upstream b { server 127.0.0.1:1; proxy_upload_rate 1k; }", #""proxy_upload_rate" directive is not allowed here in t.conf:1:34"#),
        // set_real_ip_from
        ("set_real_ip_from all;", #"invalid address "all" in "set_real_ip_from" directive in t.conf:1:18; write "0.0.0.0/0" and "::/0" to trust every sender"#),
        ("set_real_ip_from lb.example;",
         #"invalid address "lb.example" in "set_real_ip_from" directive in t.conf:1:18; write the address or CIDR range of the balancer that sends the PROXY header ("192.0.2.10", "10.0.0.0/8", "2001:db8::/32") or "unix:"; host names are not resolved here"#),
        ("set_real_ip_from 10.0.0.0/33;",
         #"invalid address "10.0.0.0/33" in "set_real_ip_from" directive in t.conf:1:18; write the address or CIDR range of the balancer that sends the PROXY header ("192.0.2.10", "10.0.0.0/8", "2001:db8::/32") or "unix:"; host names are not resolved here"#),
        ("set_real_ip_from;", #"invalid number of arguments in "set_real_ip_from" directive in t.conf:1:1"#),
        ("upstream b { server 127.0.0.1:1; set_real_ip_from 10.0.0.1; }", #""set_real_ip_from" directive is not allowed here in t.conf:1:34"#),
        // addresses
        ("upstream b { server 127.0.0.1:70000; }", #"invalid port in upstream "127.0.0.1:70000" in t.conf:1:21"#),
        ("upstream b { server unix:/\(String(repeating: "a", count: 107)); }",
         #"too long path in the unix domain socket in upstream "unix:/\#(String(repeating: "a", count: 107))" in t.conf:1:21"#),
        ("server { listen unix:/\(String(repeating: "a", count: 107)); proxy_pass 127.0.0.1:1; }",
         #"too long path in the unix domain socket in "unix:/\#(String(repeating: "a", count: 107))" of the "listen" directive in t.conf:1:17"#),
        ("admin_socket /\(String(repeating: "a", count: 107));",
         #"too long path in the unix domain socket in "admin_socket" "/\#(String(repeating: "a", count: 107))" in t.conf:1:14; a Unix socket path has at most 107 bytes; choose a shorter one"#),
        ("upstream b { server 127.0.0.1; }", #"no port in upstream "127.0.0.1" in t.conf:1:21"#),
        ("upstream b { server nosuch.invalid:1; }", #"host not found in upstream "nosuch.invalid:1" in t.conf:1:21"#),
        ("server { listen 0; proxy_pass 127.0.0.1:1; }", #"invalid port in "0" of the "listen" directive in t.conf:1:17"#),
        ("server { listen 443 ssl; proxy_pass 127.0.0.1:1; }",
         #"invalid parameter "ssl" in t.conf:1:21; ferry does not terminate TLS; it passes TLS through as bytes"#),
        ("server { listen 1 so_keepalive=x; proxy_pass 127.0.0.1:1; }", #"invalid so_keepalive value: "x" in t.conf:1:19"#),
        ("server { listen 1 backlog=0; proxy_pass 127.0.0.1:1; }", #"invalid backlog "0" in t.conf:1:19"#),
        // references and completeness, checked after the whole file
        ("upstream backend { server 127.0.0.1:1; }\nserver { listen 80; proxy_pass backnd; }",
         #"no port in upstream "backnd" in t.conf:2:32; no upstream is named "backnd"; did you mean "backend"?"#),
        ("server { listen 80; proxy_pass nosuch.invalid:80; }", #"host not found in upstream "nosuch.invalid" in t.conf:1:32"#),
        // proxy_pass as nginx reads it: host and port split at the first ":", upstream blocks
        // matched by host without regard to case, and a block never has a port
        ("server { listen 80; proxy_pass 127.0.0.1; }",
         #"no port in upstream "127.0.0.1" in t.conf:1:32; add the server's port: "127.0.0.1:PORT""#),
        ("server { listen 80; proxy_pass nope; }",
         #"no port in upstream "nope" in t.conf:1:32; no upstream is named "nope"; write an upstream name or "host:port""#),
        ("server { listen 80; proxy_pass http://127.0.0.1:13000; }",
         #"invalid host in upstream "http://127.0.0.1:13000" in t.conf:1:32; a stream proxy_pass takes no scheme: write "host:port" or an upstream name, e.g. "proxy_pass 127.0.0.1:13000;""#),
        ("server { listen 80; proxy_pass 127.0.0.1:1:2; }", #"invalid port in upstream "127.0.0.1:1:2" in t.conf:1:32"#),
        ("upstream u:1 { server 127.0.0.1:1; }\nserver { listen 80; proxy_pass u:1; }",
         #"host not found in upstream "u" in t.conf:2:32; the upstream of t.conf:1:1 is not this: "u:1" is read as host "u" and port 1, as nginx does, so no proxy_pass can name an upstream whose name has a ":""#),
        ("upstream localhost { server 127.0.0.1:1; }\nserver { listen 80; proxy_pass localhost:13000; }",
         #"upstream "localhost" may not have port 13000 in t.conf:2:32; "localhost" is the upstream of t.conf:1:1, whose servers carry their own ports: write "proxy_pass localhost;" to use it, or rename it to connect to localhost:13000 directly"#),
        ("server { listen 80; proxy_pass LocalHost:13000; }\nupstream localhost { server 127.0.0.1:1; }",
         #"upstream "LocalHost" may not have port 13000 in t.conf:1:32; "LocalHost" is the upstream of t.conf:2:1, whose servers carry their own ports: write "proxy_pass LocalHost;" to use it, or rename it to connect to LocalHost:13000 directly"#),
        ("upstream /tmp/s { server 127.0.0.1:1; }\nserver { listen 80; proxy_pass unix:/tmp/s; }",
         #"upstream "/tmp/s" may not have port 0 in t.conf:2:32; "unix:/tmp/s" is read as a unix socket whose path is the name of the upstream of t.conf:1:1; rename that upstream"#),
        ("upstream b { server 127.0.0.1:1; }\nupstream B { server 127.0.0.1:2; }",
         #"duplicate upstream "B" in t.conf:2:10; "b" of t.conf:1:1 is the same name: nginx compares upstream names without regard to case"#),
        // an upstream of backups only (nginx, under every method)
        ("upstream u { server 127.0.0.1:1 backup; server 127.0.0.1:2 backup down; least_conn; }",
         #"no servers in upstream "u" in t.conf:1:1; every server is "backup"; remove "backup" from at least one"#),
        ("upstream u { server 127.0.0.1:1 backup; }\nserver { listen 80; proxy_pass u; }",
         #"no servers in upstream "u" in t.conf:1:1; every server is "backup"; remove "backup" from at least one"#),
        ("limit_conn_zone $binary_remote_addr zone=perip:1m;\nserver { listen 1; proxy_pass 127.0.0.1:1; limit_conn peri 5; }",
         #"unknown limit_conn_zone "peri" in t.conf:2:55; did you mean "perip"?"#),
        ("log_format json '$remote_addr';\naccess_log /tmp/a jsn;", #"unknown log format "jsn" in t.conf:2:19; did you mean "json"?"#),
        ("upstream b { }", #"no servers are inside upstream in t.conf:1:1"#),
        ("server { proxy_pass 127.0.0.1:1; }", #"no "listen" is defined for server in t.conf:1:1"#),
        ("server {\n  listen 1;\n}", #"no "proxy_pass" is defined for server in t.conf:1:1"#),
        // includes
        ("include missing.conf;", #"open() "missing.conf" failed (2: No such file or directory) in t.conf:1:1"#),
        ("include a.conf;", #"include loop: "a.conf" is already being included in b.conf:1:1"#),
        ("include;", #"invalid number of arguments in "include" directive in t.conf:1:1"#),
        ("include inc/bad.conf;", #"unexpected "}" in inc/bad.conf:2:1"#),
    ]

    static let files = [
        "a.conf": "include b.conf;",
        "b.conf": "include a.conf;",
        "inc/bad.conf": "worker_processes 1;\n}",
    ]

    func testEveryMalformedInputGivesItsExactMessage() {
        XCTAssertGreaterThanOrEqual(Self.cases.count, 30)
        for (input, message) in Self.cases {
            do {
                let loaded = try load(input, files: Self.files)
                XCTFail("accepted: \(input)\n→ \(loaded.config)")
            } catch let error as ConfigError {
                XCTAssertEqual(error.description, message, "input: \(input)")
                XCTAssertEqual(error.diagnostic.level, .emerg)
            } catch {
                XCTFail("unexpected error type \(error) for \(input)")
            }
        }
    }

    func testWarningsBeforeAFailureTravelWithTheError() {
        XCTAssertThrowsError(try load("daemon off;\nfrobnicate;")) { error in
            let e = error as! ConfigError
            XCTAssertEqual(e.earlier.map(\.description), [#""daemon" directive is ignored by ferry in t.conf:1:1"#])
            XCTAssertEqual(e.location, SourceLocation(file: "t.conf", line: 2, column: 1))
        }
    }
}
