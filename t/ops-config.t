#!/usr/bin/perl

# The operator's first day (issue 15, section 1): configuration mistakes
# that passed every check and weakened security, now refused or warned
# about by nginx -t, and what the edge says about itself at start and at
# every reload.
#
#   - a device_auth_redis_prefix without its ":" is refused;
#   - each Redis-only directive without device_auth_redis is refused,
#     naming the directive and where it is;
#   - device_auth_redis_timeout above 10s is warned about (a bare number is
#     seconds), not below;
#   - pinned roots and signers that expired, or expire within 30 days, are
#     warned about at nginx -t and at reload, with their id and date; the
#     earliest expiry is a metric;
#   - the new directives' own errors (log level of a decision, canary, edge
#     name, intervals, key binding);
#   - one line per device_auth server at start and at reload: pins (ids,
#     expiry), Redis address, db, prefix, canary, edge; once connected,
#     the revoked and registered keys Redis holds, counted by SCAN in steps
#     while requests go on (and a metric).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use Time::Local qw(timegm);
use Time::HiRes qw(time sleep);
use POSIX qw(strftime);
use DeviceAuth::Test qw(kv_fields cert_fingerprint);

my $t = DeviceAuth::Test->new();
my $pki = $t->pki;
my $conf = $t->testdir . '/nginx.conf';

sub config {
    my (%p) = @_;

    my $tpl = <<'EOF';
http {
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;
    device_auth_certificate %%ROOTS%%;
%%HTTP%%
    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name localhost;

        location / {
            device_auth on;
%%LOCATION%%
        }
    }
}
EOF

    $tpl =~ s/%%ROOTS%%/$p{roots} || '%%PKI%%\/roots.pem'/e;
    $tpl =~ s/%%HTTP%%/    @{[ $p{http} || '' ]}/;
    $tpl =~ s/%%LOCATION%%/            @{[ $p{location} || '' ]}/;

    $t->write_conf($tpl);
}

sub nginx_t {
    my (%p) = @_;
    config(%p);
    return $t->test_config();
}

sub fails {
    my ($name, $re, %p) = @_;
    my ($ok, $out) = nginx_t(%p);
    ok(!$ok, "$name: nginx -t fails");
    like($out, $re, "$name: message") or diag($out);
    return $out;
}

sub passes {
    my ($name, %p) = @_;
    my ($ok, $out) = nginx_t(%p);
    ok($ok, "$name: nginx -t passes") or diag($out);
    return $out;
}

my $redis = 'device_auth_redis 127.0.0.1:6379;';
my ($out, $line);

###############################################################################
# the prefix: without its ":" the edge reads keys nobody writes

$out = fails('prefix without ":"',
    qr/^nginx: \[emerg\] "device_auth_redis_prefix" "device_auth" does not end with ":": the module would read the key "device_auth\{SN\}:revoked", not the "device_auth:\{SN\}:revoked" that operations write in \Q$conf\E:(\d+)$/m,
    http => "$redis device_auth_redis_prefix device_auth;");
($line) = $out =~ /\Q$conf\E:(\d+)$/m;
is($line, $t->conf_line(qr/device_auth_redis_prefix/),
   'prefix without ":": the line of the directive');

fails('empty prefix', qr/"device_auth_redis_prefix" "" does not end with ":"/,
      http => "$redis device_auth_redis_prefix \"\";");
passes('prefix "staging:device_auth:"',
       http => "$redis device_auth_redis_prefix staging:device_auth:;");

###############################################################################
# Redis-only directives without device_auth_redis

my %redis_only = (
    device_auth_redis_timeout    => [http => '100ms'],
    device_auth_redis_prefix     => [http => 'x:'],
    device_auth_redis_canary     => [http => 'canary'],
    device_auth_cache_size       => [http => '1000'],
    device_auth_edge_name        => [http => 'edge-1'],
    device_auth_stats_interval   => [http => '10s'],
    device_auth_fail_mode        => [location => 'open'],
    device_auth_grace            => [location => '5s'],
    device_auth_registry         => [location => 'on'],
    device_auth_key_binding      => [location => 'always'],
    device_auth_duplicate_window => [location => '1h'],
    device_auth_duplicate_limit  => [location => '2'],
    device_auth_duplicate_action => [location => 'deny'],
);

for my $d (sort keys %redis_only) {
    my ($where, $value) = @{ $redis_only{$d} };

    $out = fails("$d without device_auth_redis",
        qr/^nginx: \[emerg\] "$d" in \Q$conf\E:(\d+) needs "device_auth_redis" in the http block: without it no device state is read from redis \(revocations, registry, clones\), and "$d" would do nothing$/m,
        $where => "$d $value;");
    ($line) = $out =~ /\Q$conf\E:(\d+) needs/;
    is($line, $t->conf_line(qr/^\s*\Q$d\E /), "$d: its line");

    passes("$d with device_auth_redis", http => $redis,
           $where => "$d $value;")
        unless $where eq 'http';
}

# the first one is named when there are several
fails('two Redis-only directives: the first is named',
      qr/"device_auth_duplicate_limit" in \Q$conf\E:\d+ needs "device_auth_redis"/,
      http => 'device_auth_duplicate_limit 2;',
      location => 'device_auth_registry on;');

passes('no Redis directive, no Redis', http => '');

# a directive that is not Redis' alone
passes('device_auth_location and device_auth_log_interval without Redis',
       location => 'device_auth_location $remote_addr; '
                   . 'device_auth_log_interval 10s;');

###############################################################################
# device_auth_redis_timeout: a bare number is seconds

$out = passes('timeout 200', http => "$redis device_auth_redis_timeout 200;");
like($out, qr/^nginx: \[warn\] "device_auth_redis_timeout" 200 is 200 seconds \(a time without a unit is in seconds\), more than 10s: a request would wait that long for a redis that does not answer; write "200ms" for milliseconds in \Q$conf\E:\d+$/m,
     'timeout 200: warned, with the unit meant');

$out = passes('timeout 30s', http => "$redis device_auth_redis_timeout 30s;");
like($out, qr/^nginx: \[warn\] "device_auth_redis_timeout" 30s is more than 10s: a request would wait that long for a redis that does not answer in \Q$conf\E:\d+$/m,
     'timeout 30s: warned');

for my $v ('10s', '10', '200ms', '9999ms') {
    $out = passes("timeout $v", http => "$redis device_auth_redis_timeout $v;");
    unlike($out, qr/device_auth_redis_timeout/, "timeout $v: no warning");
}

###############################################################################
# the new directives' errors

fails('log level of an unknown decision',
      qr/^nginx: \[emerg\] "device_auth_log_level": unknown decision "scanner", it must be one of "no_cert", "invalid", "misdirected", "revoked", "signer_revoked", "signer_compromised", "unregistered", "key_mismatch", "quarantined", "duplicate", "unchecked", "error", "too_early" \("ok" is never logged\) in \Q$conf\E:\d+$/m,
      location => 'device_auth_log_level scanner info;');
fails('log level of "ok"', qr/unknown decision "ok"/,
      location => 'device_auth_log_level ok info;');
fails('log level of a decision twice',
      qr/^nginx: \[emerg\] "device_auth_log_level" of "no_cert" is duplicate in \Q$conf\E:\d+$/m,
      location => 'device_auth_log_level no_cert info; '
                  . 'device_auth_log_level no_cert notice;');
fails('log level twice', qr/"device_auth_log_level" directive is duplicate/,
      location => 'device_auth_log_level info; device_auth_log_level warn;');
fails('log level of a decision, bad level',
      qr/invalid value "debug" in "device_auth_log_level" directive, it must be "info", "notice", "warn" or "error" in \Q$conf\E:\d+/,
      location => 'device_auth_log_level no_cert debug;');
passes('log levels: all, and per decision',
       http => 'device_auth_log_level error;',
       location => 'device_auth_log_level no_cert info; '
                   . 'device_auth_log_level invalid info; '
                   . 'device_auth_log_level notice;');

fails('log interval above a day',
      qr/"device_auth_log_interval" must be between 0ms and 86400000ms/,
      location => 'device_auth_log_interval 2d;');
fails('stats interval below 1s',
      qr/"device_auth_stats_interval" must be between 1000ms and 86400000ms/,
      http => "$redis device_auth_stats_interval 500ms;");
fails('canary with a space',
      qr/"device_auth_redis_canary" directive may only hold printable characters, without spaces, "\{" or "\}"/,
      http => "$redis device_auth_redis_canary \"a b\";");
fails('canary with a brace', qr/"device_auth_redis_canary" directive may only hold/,
      http => "$redis device_auth_redis_canary \"a{b}\";");
fails('edge name with a colon',
      qr/"device_auth_edge_name" directive may only hold letters, digits, "\.", "-" and "_"/,
      http => "$redis device_auth_edge_name edge:1;");
fails('edge name too long', qr/"device_auth_edge_name" directive must be 1 to 64 characters/,
      http => "$redis device_auth_edge_name " . ('e' x 65) . ';');
fails('key binding',
      qr/invalid value "never" in "device_auth_key_binding" directive, it must be "compromised" or "always"/,
      http => $redis, location => 'device_auth_key_binding never;');
passes('every new directive',
       http => "$redis device_auth_redis_canary canary; "
               . 'device_auth_edge_name edge-1.example_2; '
               . 'device_auth_stats_interval 30s;',
       location => 'device_auth_key_binding always; '
                   . 'device_auth_log_interval 0; '
                   . 'device_auth_log_level unchecked error;');

###############################################################################
# pinned certificates that expired, or expire soon

my $now = time();

# a CA certificate signed by the test root, valid from..until (epochs)
sub signer_cert {
    my ($name, $from, $until) = @_;
    my $dir = $t->testdir . "/ca-$name";
    mkdir $dir;
    mkdir "$dir/new";
    $t->write_file("$dir/index.txt", '');
    $t->write_file("$dir/openssl.cnf", <<"EOF");
[ ca ]
default_ca = test_ca
[ test_ca ]
database        = $dir/index.txt
new_certs_dir   = $dir/new
serial          = $dir/serial
default_md      = sha256
policy          = policy_any
unique_subject  = no
[ policy_any ]
organizationName = optional
commonName       = optional
[ req ]
distinguished_name = req_dn
prompt             = no
[ req_dn ]
CN = unused
[ v3_signer ]
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
EOF
    my $fmt = sub { strftime('%Y%m%d%H%M%SZ', gmtime(shift)) };
    for my $cmd (
        ['openssl', 'genpkey', '-algorithm', 'EC', '-pkeyopt',
         'ec_paramgen_curve:P-256', '-out', "$dir/key.pem"],
        ['openssl', 'req', '-config', "$dir/openssl.cnf", '-new', '-key',
         "$dir/key.pem", '-subj', "/O=Device Auth Test Inc/CN=Signer $name",
         '-out', "$dir/csr.pem"],
        ['openssl', 'ca', '-batch', '-notext', '-rand_serial', '-preserveDN',
         '-config', "$dir/openssl.cnf", '-cert', "$pki/root.pem",
         '-keyfile', "$pki/root.key", '-in', "$dir/csr.pem",
         '-extensions', 'v3_signer', '-startdate', $fmt->($from),
         '-enddate', $fmt->($until), '-out', "$dir/cert.pem"])
    {
        my ($rc, $o) = DeviceAuth::Test::_capture(@$cmd);
        die "@$cmd failed: $o" if $rc != 0;
    }
    return "$dir/cert.pem";
}

my $old_until = timegm(0, 0, 0, 1, 2, 2021);           # 2021-03-01
my $soon_until = int($now) + 10 * 86400 - 3600;         # in 10 days
my $old = signer_cert('2021', $old_until - 365 * 86400, $old_until);
my $soon = signer_cert('soon', $now - 86400, $soon_until);

$t->write_file('aging-signers.pem', $t->read_file($old) . $t->read_file($soon)
                                    . $t->read_file("$pki/signer1.pem"));

my %id = (old => cert_fingerprint($old), soon => cert_fingerprint($soon));
my $iso = sub { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(shift)) };
my $aging = $t->testdir . '/aging-signers.pem';

$out = passes('aging signers', http => "device_auth_signers $aging;");
like($out, qr/^nginx: \[warn\] "device_auth_signers" "\Q$aging\E": pinned certificate "CN=Signer 2021,O=Device Auth Test Inc" \(id $id{old}\) expired on 2021-03-01T00:00:00Z: every device it anchors is refused \(495, expired\) in \Q$conf\E:\d+$/m,
     'nginx -t: the expired signer, its id and date');
like($out, qr/^nginx: \[warn\] "device_auth_signers" "\Q$aging\E": pinned certificate "CN=Signer soon,O=Device Auth Test Inc" \(id $id{soon}\) expires in 10 days, on \Q${\ $iso->($soon_until)}\E: every device it anchors will be refused then in \Q$conf\E:\d+$/m,
     'nginx -t: the signer that expires in 10 days');
is(scalar(() = $out =~ /pinned certificate/g), 2,
   'nginx -t: the signer valid for years is not named');

# a root (a pinned CA that needs not be self-signed) that expired
$out = passes('expired root', roots => $old);
like($out, qr/^nginx: \[warn\] "device_auth_certificate" "\Q$old\E": pinned certificate "CN=Signer 2021,O=Device Auth Test Inc" \(id $id{old}\) expired on 2021-03-01T00:00:00Z: every device it anchors is refused \(495, expired\) in \Q$conf\E:\d+$/m,
     'nginx -t: a pinned root that expired');

###############################################################################
# at start: one line per server (pins, Redis); the metric of the earliest
# expiry; the keys Redis holds, counted by SCAN while requests go on

my $P = 'device_auth:';
my $rport = $t->redis_start();

# keys: 1,500 revoked, 2,200 registered, and others that are not counted
$t->write_file('keys.txt', join '', map {
    my $sn = sprintf('0123AA%012X', $_);
    ($_ <= 1500 ? "SET $P\{$sn}:revoked r\r\n" : '')
    . ($_ <= 2200 ? "SET $P\{$sn}:registered b\r\n" : '')
    . ($_ <= 300 ? "SET $P\{$sn}:evrl x\r\n" : '')
    . "SET other:\{$sn}:revoked x\r\n"
} 1 .. 2500);
system("redis-cli -p $rport --pipe < " . $t->testdir . "/keys.txt >/dev/null")
    == 0 or die 'redis-cli --pipe';
$t->redis_cli('SET', "${P}signer:" . ('a' x 64) . ':revoked', 'not a device');
$t->redis_cli('SET', "${P}canary", 'set once');

$t->write_conf(<<'EOF');
worker_processes 2;

http {
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;
    device_auth_certificate %%PKI%%/roots.pem;

    device_auth_redis 127.0.0.1:%%REDIS_PORT%% db=0;
    device_auth_redis_timeout %%REDIS_TIMEOUT%%;
    device_auth_redis_canary canary;
    device_auth_edge_name edge-7;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name devices.example.com;

        location / {
            device_auth on;
            return 200 "$device_auth_status\n";
        }

        location = /metrics {
            device_auth_metrics;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%% ssl;
        server_name signed.example.com;

        device_auth_signers #AGING#;

        location / {
            device_auth on;
            return 200 "$device_auth_status\n";
        }
    }

    server {
        listen 127.0.0.1:%%PORT_2%% ssl;
        server_name plain.example.com;

        location / {
            return 200 "no device_auth here\n";
        }
    }
}
EOF

{
    my $c = $t->read_file('nginx.conf');
    $c =~ s/#AGING#/$aging/;
    $t->write_file('nginx.conf', $c);
    $t->{conf} = $c;
}

my $mark = $t->log_mark();
$t->run();

# requests while the keys are counted: never held back
my @st;
push @st, $t->https_get(device => 'dev1')->{status} for 1 .. 20;
is_deeply(\@st, [(200) x 20], 'requests during the count: all answered 200');

sub start_lines {
    my ($log) = @_;
    return map { kv_fields($_) }
           $log =~ /\[notice\] \d+#\d+: device_auth: (server=.*)$/mg;
}

my @lines = start_lines($t->read_error_log($mark));
is(scalar @lines, 2, 'start: one line per device_auth server');

my %by = map { $_->{server} => $_ } @lines;

# notAfter as the edge writes it
sub until_of {
    my ($file) = @_;
    my $e = `openssl x509 -in $file -noout -enddate -dateopt iso_8601`;
    return $e =~ /notAfter=(\d+-\d+-\d+) (\d+:\d+:\d+)Z/ ? "$1T$2Z" : '?';
}

my $roots_expected = cert_fingerprint("$pki/roots.pem") . ' until '
                     . until_of("$pki/roots.pem");

my $a = $by{'devices.example.com'} || {};
is($a->{roots}, $roots_expected,
   'start: the pinned roots, their ids and expiry');
ok(!exists $a->{signers}, 'start: no signers pinned there');
is(join(' ', @$a{qw(depth profile redis db prefix canary edge)}),
   "1 atecc608 127.0.0.1:$rport 0 device_auth: device_auth:canary edge-7",
   'start: depth, profile, Redis address, db, prefix, canary, edge');
is($a->{conf}, $conf, 'start: the configuration file');
is($a->{line}, $t->conf_line(qr/device_auth on;/),
   'start: the line of device_auth on');

my $b = $by{'signed.example.com'} || {};
is($b->{signers}, join(', ', "$id{old} until 2021-03-01T00:00:00Z",
                       "$id{soon} until " . $iso->($soon_until),
                       cert_fingerprint("$pki/signer1.pem") . ' until '
                       . until_of("$pki/signer1.pem")),
   'start: the pinned signers, expired ones too');

# the keys
my $keys = $t->wait_error_log(qr/device_auth: keys counted: /, mark => $mark,
                              timeout => 30);
my ($count) = ($keys || '') =~ /device_auth: keys counted: (.*)$/m;
my $k = kv_fields($count || '');
is(join(' ', @$k{qw(redis db prefix revoked registered)}),
   "127.0.0.1:$rport 0 device_auth: 1500 2200",
   'once connected: the revoked and registered keys, counted')
    or diag($keys);
ok(($k->{scan_steps} || 0) > 1, "counted in steps ($k->{scan_steps})");
is($k->{device_keys}, 1500 + 2200 + 300, 'every device key was looked at');
is(scalar(() = ($keys || '') =~ /keys counted/g), 1, 'counted by one worker');

sub scrape {
    my $r = $t->https_get(path => '/metrics', device => 'dev1');
    return { map { /^(\S+) (\S+)$/ ? ($1 => $2) : () }
             split /\n/, $r->{body} };
}

my $m = scrape();
is($m->{'nginx_device_auth_redis_keys{kind="revoked"}'}, 1500,
   'metric: revoked keys');
is($m->{'nginx_device_auth_redis_keys{kind="registered"}'}, 2200,
   'metric: registered keys');
is($m->{nginx_device_auth_pins_earliest_expiry_seconds}, $old_until,
   'metric: the earliest expiry of the pins: the expired signer');

# the warnings and the lines again at reload

SKIP: {
    skip 'reloads need the master process', 4 if $t->valgrind;

    $mark = $t->log_mark();
    ok($t->reload(), 'reload');
    my $log = $t->read_error_log($mark);
    like($log, qr/\[warn\] [^\n]*"device_auth_signers" "\Q$aging\E": pinned certificate "CN=Signer 2021,[^\n]*expired on 2021-03-01T00:00:00Z/,
         'reload: the expired signer is warned about');
    like($log, qr/\[warn\] [^\n]*pinned certificate "CN=Signer soon,[^\n]*expires in 10 days/,
         'reload: the signer that expires soon too');
    is(scalar(start_lines($log)), 2, 'reload: the lines of the servers');
}

$t->check_error_log();

done_testing();
