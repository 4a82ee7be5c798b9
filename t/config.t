#!/usr/bin/perl

# nginx -t: every configuration error of issue 2 and docs/design-notes, each
# message naming the directive and the file (and the line where nginx can
# know it); and configurations that must pass.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use DeviceAuth::Test;

my $t = DeviceAuth::Test->new();
my $pki = $t->pki;
my $conf = $t->testdir . '/nginx.conf';

$t->write_file('empty.pem', '');

# a configuration: %%HTTP%% and %%SERVER%% and %%LOCATION%% are replaced

sub config {
    my (%p) = @_;

    my $tpl = <<'EOF';
http {
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;
%%HTTP%%
    server {
        listen 127.0.0.1:%%PORT_0%% %%SSL%%;
%%SERVER%%
        location / {
%%LOCATION%%
        }
    }
}
EOF

    my $ssl = exists $p{ssl} ? $p{ssl} : 'ssl';
    my $http = exists $p{http} ? $p{http}
                               : 'device_auth_certificate %%PKI%%/roots.pem;';
    my $location = exists $p{location} ? $p{location} : 'device_auth on;';

    $tpl =~ s/%%SSL%%/$ssl/;
    $tpl =~ s/%%HTTP%%/    $http/;
    $tpl =~ s/%%SERVER%%/        @{[ $p{server} || '' ]}/;
    $tpl =~ s/%%LOCATION%%/            $location/;

    $t->write_conf($tpl);
}

sub fails {
    my ($name, $re, %p) = @_;

    config(%p);
    my ($ok, $out) = $t->test_config();

    ok(!$ok, "$name: nginx -t fails");
    like($out, $re, "$name: message") or diag($out);
    unlike($out, qr/\[alert\]|signal/, "$name: no alert");

    return $out;
}

sub passes {
    my ($name, %p) = @_;

    config(%p);
    my ($ok, $out) = $t->test_config();

    ok($ok, "$name: nginx -t passes") or diag($out);
}

sub line_of {
    my ($re) = @_;
    return $t->conf_line($re);
}

my ($out, $line);

###############################################################################
# device_auth on in a server without "listen ... ssl"

# an nginx with HTTP/3 also accepts "listen ... quic" (t/http3.t)
my $listens = $t->nginx_has_http3 ? '"ssl" or "quic"' : '"ssl"';

for my $where ('location', 'server') {
    $out = fails("device_auth on in a $where, no ssl listen",
                 qr/^nginx: \[emerg\] "device_auth" in \Q$conf\E:(\d+) needs a server that listens with \Q$listens\E$/m,
                 ssl => '',
                 $where eq 'server' ? (server => 'device_auth on;',
                                       location => '') : ());
    ($line) = $out =~ /\Q$conf\E:(\d+) needs/;
    is($line, line_of(qr/^\s*device_auth on;/),
       "device_auth on in a $where, no ssl listen: the line of device_auth");
}

# device_auth on without device_auth_certificate

$out = fails('device_auth on without certificate',
             qr/^nginx: \[emerg\] "device_auth" in \Q$conf\E:\d+ needs "device_auth_certificate"/m,
             http => '');
($line) = $out =~ /\Q$conf\E:(\d+) needs/;
is($line, line_of(qr/^\s*device_auth on;/),
   'device_auth on without certificate: the line of device_auth');

###############################################################################
# unreadable and non-PEM files

for my $d ('device_auth_certificate', 'device_auth_signers') {
    my $http = $d eq 'device_auth_signers'
        ? "device_auth_certificate %%PKI%%/roots.pem; $d" : $d;

    $out = fails("$d: missing file",
        qr/^nginx: \[emerg\] "$d": cannot open "\/nonexistent\/pins.pem": No such file or directory in \Q$conf\E:(\d+)$/m,
        http => "$http /nonexistent/pins.pem;");
    ($line) = $out =~ /\Q$conf\E:(\d+)$/m;
    is($line, line_of(qr/\Q$d\E \/nonexistent/), "$d: missing file: line");

    fails("$d: missing file, relative to the prefix",
        qr/^nginx: \[emerg\] "$d": cannot open "\Q${\$t->testdir}\E\/nothere.pem": No such file or directory in \Q$conf\E:\d+$/m,
        http => "$http nothere.pem;");

    fails("$d: not PEM",
        qr/^nginx: \[emerg\] "$d": no PEM certificate found in "\Q$pki\E\/notpem.txt" in \Q$conf\E:\d+$/m,
        http => "$http %%PKI%%/notpem.txt;");

    fails("$d: empty file",
        qr/^nginx: \[emerg\] "$d": no PEM certificate found in "[^"]*empty.pem" in \Q$conf\E:\d+$/m,
        http => "$http %%TESTDIR%%/empty.pem;");

    fails("$d: a private key",
        qr/^nginx: \[emerg\] "$d": "\Q$pki\E\/key-only.pem" holds a "PRIVATE KEY" PEM block, only certificates are allowed in \Q$conf\E:\d+$/m,
        http => "$http %%PKI%%/key-only.pem;");

    fails("$d: a certificate and a private key",
        qr/^nginx: \[emerg\] "$d": "\Q$pki\E\/cert-and-key.pem" holds a "PRIVATE KEY" PEM block/m,
        http => "$http %%PKI%%/cert-and-key.pem;");
}

# the same in a server block

$out = fails('device_auth_certificate in a server: missing file',
    qr/^nginx: \[emerg\] "device_auth_certificate": cannot open "\/nonexistent\/x.pem": No such file or directory in \Q$conf\E:(\d+)$/m,
    server => 'device_auth_certificate /nonexistent/x.pem;');
($line) = $out =~ /\Q$conf\E:(\d+)$/m;
is($line, line_of(qr/device_auth_certificate \/nonexistent/),
   'device_auth_certificate in a server: line');

###############################################################################
# a pinned root that is not a CA

$out = fails('root not a CA',
    qr/^nginx: \[emerg\] "device_auth_certificate" "\Q$pki\E\/leaf-as-root.pem": certificate "CN=sn0123A1B2C3D4E5F601,O=Device Auth Test Inc" is not a CA \(no basicConstraints CA:TRUE\), a pinned root must be a CA in \Q$conf\E:(\d+)$/m,
    http => 'device_auth_certificate %%PKI%%/leaf-as-root.pem;');
($line) = $out =~ /\Q$conf\E:(\d+)$/m;
is($line, line_of(qr/leaf-as-root/), 'root not a CA: line');

fails('root bundle with a CA and a leaf', qr/"device_auth_certificate" "[^"]*roots-and-leaf.pem": certificate "CN=sn0123A1B2C3D4E5F601,[^"]*" is not a CA/,
      http => 'device_auth_certificate %%TESTDIR%%/roots-and-leaf.pem;')
    if $t->write_file('roots-and-leaf.pem',
                      $t->read_file("$pki/root.pem")
                      . $t->read_file("$pki/dev1.pem"));

###############################################################################
# signers

fails('signer not chaining to a pinned root',
    qr/^nginx: \[emerg\] "device_auth_signers" "\Q$pki\E\/rogue-signer-bundle.pem": signer "CN=Rogue Signer,O=Device Auth Test Inc" does not chain to a pinned root: unable to get local issuer certificate \(pinned roots from "device_auth_certificate" "\Q$pki\E\/roots.pem", "device_auth_verify_depth" 1\)$/m,
    http => 'device_auth_certificate %%PKI%%/roots.pem; '
            . 'device_auth_signers %%PKI%%/rogue-signer-bundle.pem;');

fails('signer not chaining, in a server',
    qr/"device_auth_signers" "\Q$pki\E\/rogue-signer-bundle.pem": signer "CN=Rogue Signer,O=Device Auth Test Inc" does not chain to a pinned root/,
    server => 'device_auth_signers %%PKI%%/rogue-signer-bundle.pem;');

fails('a good and a rogue signer',
    qr/"device_auth_signers" "[^"]*mixed-signers.pem": signer "CN=Rogue Signer,O=Device Auth Test Inc" does not chain to a pinned root/,
    http => 'device_auth_certificate %%PKI%%/roots.pem; '
            . 'device_auth_signers %%TESTDIR%%/mixed-signers.pem;')
    if $t->write_file('mixed-signers.pem',
                      $t->read_file("$pki/signers.pem")
                      . $t->read_file("$pki/rogue_signer.pem"));

fails('signer that is not a CA',
    qr/"device_auth_signers" "\Q$pki\E\/dev1.pem": signer "CN=sn0123A1B2C3D4E5F601,O=Device Auth Test Inc" is not a CA/,
    http => 'device_auth_certificate %%PKI%%/roots.pem; '
            . 'device_auth_signers %%PKI%%/dev1.pem;');

fails('signer beyond the depth',
    qr/"device_auth_signers" "\Q$pki\E\/inter2.pem": signer "CN=Device Auth Test Intermediate 2,[^"]*" does not chain to a pinned root/,
    http => 'device_auth_certificate %%PKI%%/roots.pem; '
            . 'device_auth_signers %%PKI%%/inter2.pem;');

passes('signer within the depth (2)',
    http => 'device_auth_certificate %%PKI%%/roots.pem; '
            . 'device_auth_verify_depth 2; '
            . 'device_auth_signers %%TESTDIR%%/inter-signers.pem;')
    if $t->write_file('inter-signers.pem',
                      $t->read_file("$pki/inter2.pem")
                      . $t->read_file("$pki/inter1.pem"));

fails('signers without certificate',
    qr/^nginx: \[emerg\] "device_auth_signers" "\Q$pki\E\/signers.pem" needs "device_auth_certificate"/m,
    http => 'device_auth_signers %%PKI%%/signers.pem;');

fails('signers with depth 0',
    qr/"device_auth_signers" "\Q$pki\E\/signers.pem": pinned signers need a verify depth of at least 1/,
    http => 'device_auth_certificate %%PKI%%/roots.pem; '
            . 'device_auth_signers %%PKI%%/signers.pem; '
            . 'device_auth_verify_depth 0;');

###############################################################################
# header prefix

for my $c (['X-', qr/"device_auth_header_prefix" "X-" would remove the "X-Forwarded-For" header/],
           ['X-Forwarded-', qr/"device_auth_header_prefix" "X-Forwarded-" would remove the "X-Forwarded-For" header/],
           ['Host', qr/"device_auth_header_prefix" "Host" would remove the "Host" header/],
           ['x-real', qr/"device_auth_header_prefix" "x-real" would remove the "X-Real-IP" header/],
           ['X_Device_', qr/"device_auth_header_prefix" "X_Device_" may only hold letters, digits and "-"/],
           ['X-Device:', qr/"device_auth_header_prefix" "X-Device:" may only hold letters, digits and "-"/],
           ['', qr/"device_auth_header_prefix" must be 1 to 48 characters/],
           ['X-' . ('D' x 47), qr/"device_auth_header_prefix" must be 1 to 48 characters/])
{
    my ($prefix, $re) = @$c;

    for my $where ('http', 'location') {
        $out = fails("prefix \"$prefix\" in $where",
            qr/^nginx: \[emerg\] $re in \Q$conf\E:\d+$/m,
            $where eq 'http'
                ? (http => 'device_auth_certificate %%PKI%%/roots.pem; '
                           . "device_auth_header_prefix \"$prefix\";")
                : (location => "device_auth on; "
                               . "device_auth_header_prefix \"$prefix\";"));
    }
}

($line) = $out =~ /\Q$conf\E:(\d+)$/m;
is($line, line_of(qr/device_auth_header_prefix/),
   'bad prefix: the line of the directive');

passes('prefix X-Device-', http => 'device_auth_certificate %%PKI%%/roots.pem; '
                                   . 'device_auth_header_prefix X-Device-;');
passes('prefix X-Edge-Device- in a location',
       location => 'device_auth on; device_auth_header_prefix X-Edge-Device-;');

###############################################################################
# depth, profile, log level, flag

for my $depth (-1, 'x') {
    fails("depth $depth", qr/"device_auth_verify_depth" directive invalid number in \Q$conf\E:\d+/,
          server => "device_auth_verify_depth $depth;");
}

$out = fails('depth 17', qr/^nginx: \[emerg\] .*between 0 and 16 in \Q$conf\E:\d+$/m,
             server => 'device_auth_verify_depth 17;');

like($out, qr/"device_auth_verify_depth"/, 'depth 17: names the directive');

passes('depth 16', server => 'device_auth_verify_depth 16;');
passes('depth 0', server => 'device_auth_verify_depth 0;');

$out = fails('unknown profile', qr/^nginx: \[emerg\] .*"foo".* in \Q$conf\E:\d+$/m,
             server => 'device_auth_profile foo;');

like($out, qr/"device_auth_profile"/, 'unknown profile: names the directive');

$out = fails('unknown log level', qr/^nginx: \[emerg\] .*"debug".* in \Q$conf\E:\d+$/m,
             location => 'device_auth on; device_auth_log_level debug;');

like($out, qr/"device_auth_log_level"/,
     'unknown log level: names the directive');

passes('profiles and log levels',
       server => 'device_auth_profile generic;',
       location => 'device_auth on; device_auth_log_level info;');

fails('device_auth maybe',
      qr/invalid value "maybe" in "device_auth" directive, it must be "on" or "off" in \Q$conf\E:\d+/,
      location => 'device_auth maybe;');

fails('device_auth in http',
      qr/"device_auth" directive is not allowed here in \Q$conf\E:\d+/,
      http => 'device_auth_certificate %%PKI%%/roots.pem; device_auth on;');

fails('device_auth_certificate in a location',
      qr/"device_auth_certificate" directive is not allowed here in \Q$conf\E:\d+/,
      location => 'device_auth_certificate %%PKI%%/roots.pem;');

fails('duplicate device_auth_certificate',
      qr/"device_auth_certificate" directive is duplicate in \Q$conf\E:\d+/,
      server => 'device_auth_certificate %%PKI%%/roots.pem; '
                . 'device_auth_certificate %%PKI%%/roots.pem;');

###############################################################################
# configurations that pass

passes('device_auth with ssl_verify_client on',
       server => 'ssl_verify_client on; '
                 . 'ssl_client_certificate %%PKI%%/roots.pem;');
passes('device_auth with ssl_verify_client optional_no_ca',
       server => 'ssl_verify_client optional_no_ca;');
passes('device_auth_certificate without device_auth', location => '');
passes('no device_auth directive at all', http => '', location => '');
passes('device_auth off without certificate', http => '',
       location => 'device_auth off;');
passes('device_auth on, plain and ssl listen',
       server => 'listen 127.0.0.1:%%PORT_1%%;');
passes('signers and roots in a server',
       http => '',
       server => 'device_auth_certificate %%PKI%%/roots.pem; '
                 . 'device_auth_signers %%PKI%%/signers.pem;');
passes('both roots', http => 'device_auth_certificate %%PKI%%/roots_both.pem;');

# and nginx runs with one of them

config(server => 'device_auth_signers %%PKI%%/signers.pem;');
$t->run();
my $r = $t->https_get(device => 'dev1', leaf_only => 1, path => '/');
is($r->{status}, 404, 'running: a device reaches the (empty) location');

###############################################################################
# Redis directives

my $roots = 'device_auth_certificate %%PKI%%/roots.pem; ';

for my $c (['redis.example.com:6379', qr/"device_auth_redis": "redis\.example\.com" is not an IP address \(host names would need a blocking DNS lookup\)/],
           ['127.0.0.1', qr/"device_auth_redis": invalid address "127\.0\.0\.1", expected "ip:port" or "unix:\/path"/],
           ['127.0.0.1:0', qr/"device_auth_redis": invalid port in "127\.0\.0\.1:0"/],
           ['127.0.0.1:65536', qr/"device_auth_redis": invalid port/],
           ['2001:db8::1:80', qr/"device_auth_redis": invalid address "2001:db8::1:80", an IPv6 address is written "\[ipv6\]:port"/],
           ['[1.2.3.4]:80', qr/"device_auth_redis": invalid address "\[1\.2\.3\.4\]:80", brackets are for IPv6 addresses/],
           ['unix:', qr/"device_auth_redis": unix socket path must be absolute/],
           ['unix:/', qr/"device_auth_redis": unix socket path must be absolute/],
           ['unix:relative.sock', qr/"device_auth_redis": unix socket path must be absolute/],
           ['127.0.0.1:6379 db=x', qr/"device_auth_redis": invalid or duplicate "db="/],
           ['127.0.0.1:6379 db=1 db=2', qr/"device_auth_redis": invalid or duplicate "db="/],
           ['127.0.0.1:6379 user=edge', qr/"device_auth_redis": "user=" needs "password="/],
           ['127.0.0.1:6379 tls=on', qr/"device_auth_redis": unknown option "tls=on"/],
           # Sentinel and Cluster (issue 12)
           ['127.0.0.1:6379 127.0.0.1:6380', qr/"device_auth_redis": several addresses need "sentinel=<master name>" \(they are sentinels\) or "cluster" \(they are cluster nodes\)/],
           ['sentinel=devices', qr/"device_auth_redis": no address/],
           ['cluster', qr/"device_auth_redis": no address/],
           ['127.0.0.1:26379 sentinel=devices cluster', qr/"device_auth_redis": "sentinel=" and "cluster" exclude each other/],
           ['127.0.0.1:7000 cluster sentinel=devices', qr/"device_auth_redis": "sentinel=" and "cluster" exclude each other/],
           ['127.0.0.1:7000 127.0.0.1:7001 cluster db=1', qr/"device_auth_redis": "db=" cannot be used with "cluster": a Redis Cluster has database 0 only/],
           ['127.0.0.1:7000 cluster cluster', qr/"device_auth_redis": duplicate "cluster"/],
           ['127.0.0.1:26379 sentinel=', qr/"device_auth_redis": invalid or duplicate "sentinel=" \(a master name of at most 63 printable characters, no space\)/],
           ['127.0.0.1:26379 sentinel=a sentinel=b', qr/"device_auth_redis": invalid or duplicate "sentinel="/],
           ['127.0.0.1:26379 sentinel_password=x', qr/"device_auth_redis": "sentinel_password=" needs "sentinel="/],
           ['127.0.0.1:26379 sentinel=devices sentinel_user=edge', qr/"device_auth_redis": "sentinel_user=" needs "sentinel_password="/],
           ['127.0.0.1:26379 127.0.0.1:26379 sentinel=devices', qr/"device_auth_redis": duplicate address "127\.0\.0\.1:26379"/],
           ['127.0.0.1:26379 10.0.0.300:26379 sentinel=devices', qr/"device_auth_redis": "10\.0\.0\.300" is not an IP address \(host names would need a blocking DNS lookup\)/],
           ['sentinel1.example.com:26379 sentinel=devices', qr/"device_auth_redis": "sentinel1\.example\.com" is not an IP address/],
           ['127.0.0.1:26379 127.0.0.1:0 sentinel=devices', qr/"device_auth_redis": invalid port in "127\.0\.0\.1:0"/],
           ['unix:/run/redis.sock sentinel=devices', qr/"device_auth_redis": a "unix:" address is for one Redis alone; sentinels and cluster nodes are "ip:port"/],
           ['127.0.0.1:7000 unix:/run/redis.sock cluster', qr/"device_auth_redis": a "unix:" address is for one Redis alone/],
           [join(' ', map { "127.0.0.1:" . (7000 + $_) } 0 .. 16) . ' cluster', qr/"device_auth_redis": more than 16 addresses/])
{
    my ($arg, $re) = @$c;
    $out = fails("device_auth_redis $arg",
                 qr/^nginx: \[emerg\] $re.* in \Q$conf\E:\d+$/m,
                 http => $roots . "device_auth_redis $arg;");
    ($line) = $out =~ /\Q$conf\E:(\d+)$/m;
    is($line, line_of(qr/device_auth_redis /),
       "device_auth_redis $arg: the line of the directive");
}

passes('device_auth_redis forms',
       http => $roots . 'device_auth_redis [::1]:6379 db=2 user=edge '
                      . 'password=s3cret;');
passes('device_auth_redis unix socket',
       http => $roots . 'device_auth_redis unix:/run/redis/redis.sock;');
passes('device_auth_redis sentinels',
       http => $roots . 'device_auth_redis 10.0.0.1:26379 10.0.0.2:26379 '
                      . '[::1]:26379 sentinel=devices password=s3cret '
                      . 'sentinel_password=s3ntinel db=3;');
passes('device_auth_redis one sentinel, ACL users',
       http => $roots . 'device_auth_redis 10.0.0.1:26379 sentinel=dev.ices-1 '
                      . 'user=edge password=s3cret sentinel_user=watch '
                      . 'sentinel_password=s3ntinel;');

fails('device_auth_redis twice', qr/"device_auth_redis" directive is duplicate/,
      http => $roots . 'device_auth_redis 127.0.0.1:6379; '
                     . 'device_auth_redis 127.0.0.1:6380;');

# one key is on one node of a cluster: it cannot tell of the others
fails('device_auth_redis_canary with a cluster',
      qr/"device_auth_redis_canary" cannot be used with a redis cluster: its key is on one node only/,
      http => $roots . 'device_auth_redis 127.0.0.1:7000 cluster; '
                     . 'device_auth_redis_canary canary;');
passes('device_auth_redis_canary with sentinels',
       http => $roots . 'device_auth_redis 10.0.0.1:26379 sentinel=devices; '
                      . 'device_auth_redis_canary canary;');

fails('device_auth_redis in a server',
      qr/"device_auth_redis" directive is not allowed here/,
      server => 'device_auth_redis 127.0.0.1:6379;');

fails('redis timeout 0',
      qr/"device_auth_redis_timeout" must be between 1ms and 3600000ms in \Q$conf\E:\d+/,
      http => $roots . 'device_auth_redis_timeout 0;');

fails('redis prefix with a brace',
      qr/"device_auth_redis_prefix" directive must be at most 128 characters, without "\{" or "\}"/,
      http => $roots . 'device_auth_redis_prefix "da{x}:";');

fails('duplicate window below 1s',
      qr/"device_auth_duplicate_window" must be between 1000ms and \d+ms in \Q$conf\E:\d+/,
      location => 'device_auth on; device_auth_duplicate_window 500ms;');

fails('duplicate limit 101',
      qr/"device_auth_duplicate_limit" must be between 0 and 100 in \Q$conf\E:\d+/,
      location => 'device_auth on; device_auth_duplicate_limit 101;');

fails('duplicate action',
      qr/invalid value "ban" in "device_auth_duplicate_action" directive, it must be "log", "deny" or "quarantine" in \Q$conf\E:\d+/,
      location => 'device_auth on; device_auth_duplicate_action ban;');

fails('fail mode',
      qr/invalid value "half" in "device_auth_fail_mode" directive, it must be "closed" or "open"/,
      location => 'device_auth on; device_auth_fail_mode half;');

fails('cache size below 16',
      qr/"device_auth_cache_size" must be between 16 and 100000000 in \Q$conf\E:\d+/,
      http => $roots . 'device_auth_cache_size 10;');

fails('cache size in a server',
      qr/"device_auth_cache_size" directive is not allowed here/,
      server => 'device_auth_cache_size 1000;');

fails('grace',
      qr/"device_auth_grace" directive invalid value in \Q$conf\E:\d+/,
      location => 'device_auth on; device_auth_grace soon;');

# removed before any release: said so, with what to do
fails('recheck',
      qr/^nginx: \[emerg\] "device_auth_recheck" is no longer needed: each worker caches the device state and Redis pushes its changes; remove it \(docs\/directives\.md\) in \Q$conf\E:\d+$/m,
      location => 'device_auth on; device_auth_recheck 5s;');

passes('every Redis directive',
       http => $roots . 'device_auth_redis 127.0.0.1:6379; '
                      . 'device_auth_redis_timeout 150ms; '
                      . 'device_auth_redis_prefix edge:; '
                      . 'device_auth_cache_size 200000;',
       location => 'device_auth on; device_auth_fail_mode open; '
                   . 'device_auth_grace 5s; device_auth_registry on; '
                   . 'device_auth_location $binary_remote_addr; '
                   . 'device_auth_duplicate_window 1h; '
                   . 'device_auth_duplicate_limit 5; '
                   . 'device_auth_duplicate_action quarantine;');

$t->check_error_log();

done_testing();
