#!/usr/bin/perl

# Device verification in the TLS handshake and the per-request decision:
# genuine devices (TLS 1.2 and 1.3), pinned signers, unpinned roots and
# signers, validity, profile (key, curve, signature, CN, CA), depth, no
# certificate, error_page, "return" and "rewrite" protected, variables,
# profile generic, ssl_verify_client alongside device_auth.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use DeviceAuth::Test qw(upstream_values upstream_headers decision_lines);

my $t = DeviceAuth::Test->new();

$t->write_conf(<<'EOF');
http {
    ssl_protocols        TLSv1.2 TLSv1.3;
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_log_interval 0;    # a line for every decision

    log_format vars '$request_uri [$device_auth_status] [$device_auth_reason]';

    # roots pinned, no signers, depth 1; plain HTTP too
    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        listen 127.0.0.1:%%PORT_6%%;
        server_name localhost;

        location / {
            device_auth on;
            proxy_set_header X-Conn $connection;
            proxy_pass http://%%ECHO%%;
        }

        location /return {
            device_auth on;
            return 200 "return $device_auth_serial\n";
        }

        location /rewrite {
            device_auth on;
            rewrite ^ /open/rewritten last;
        }

        location /open {
            proxy_pass http://%%ECHO%%;
        }

        location /vars {
            device_auth on;
            access_log %%TESTDIR%%/vars.log vars;
            return 200 "status=$device_auth_status serial=$device_auth_serial signer=$device_auth_signer fingerprint=$device_auth_fingerprint reason=$device_auth_reason\n";
        }

        location /errpage {
            device_auth on;
            error_page 495 496 /denied;
            proxy_pass http://%%ECHO%%;
        }

        location /errpage403 {
            device_auth on;
            error_page 495 496 =403 /denied;
            proxy_pass http://%%ECHO%%;
        }

        location /quiet {
            device_auth on;
            device_auth_log_level info;
            return 200 "quiet\n";
        }

        location /loud {
            device_auth on;
            device_auth_log_level error;
            return 200 "loud\n";
        }

        location = /denied {
            add_header X-Reason $device_auth_reason always;
            return 403 "denied status=$device_auth_status reason=$device_auth_reason\n";
        }
    }

    # pinned signers: a device may send only its leaf
    server {
        listen 127.0.0.1:%%PORT_1%% ssl;
        device_auth_signers %%PKI%%/signers.pem;

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }
    }

    # depth 2
    server {
        listen 127.0.0.1:%%PORT_2%% ssl;
        device_auth_verify_depth 2;

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }
    }

    # profile generic
    server {
        listen 127.0.0.1:%%PORT_3%% ssl;
        device_auth_profile generic;

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }
    }

    # device_auth at server level, with ssl_verify_client and another
    # company's root as ssl_client_certificate, and satisfy any
    server {
        listen 127.0.0.1:%%PORT_4%% ssl;
        device_auth on;
        ssl_verify_client optional;
        ssl_client_certificate %%PKI%%/root2.pem;

        location / {
            satisfy any;
            allow all;
            proxy_pass http://%%ECHO%%;
        }
    }

    # both roots pinned
    server {
        listen 127.0.0.1:%%PORT_5%% ssl;
        device_auth_certificate %%PKI%%/roots_both.pem;

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }
    }
}
EOF

$t->run();

my %port = map { $_ => $t->port($_) } 0 .. 6;
my $case = 0;

# one request; a unique query names it in the access log

sub get {
    my (%args) = @_;
    my $path = ($args{path} || '/') . '?case=' . ++$case;
    my $mark = $t->log_mark();
    my $r = $t->https_get(%args, path => $path);
    $r->{uri} = $path;
    $r->{log} = $t->read_error_log($mark);
    return $r;
}

sub identity_ok {
    my ($r, $name, $dev, $signer) = @_;
    $t->identity_ok($r, $name, $dev, $signer);
}

# 495 and 496 reach the client as 400 with nginx's standard bodies

sub denied {
    my ($r, $code, $name, $reason, $log_re) = @_;

    is($r->{status}, 400, "$name: 400 to the client")
        or diag($r->{error} || $r->{raw});
    like($r->{body}, $code == 495 ? qr/The SSL certificate error/
                                  : qr/No required SSL certificate was sent/,
         "$name: nginx's $code body");
    ok(!$r->{headers}{'x-echo'}, "$name: upstream not reached");

    # as for nginx's own ssl_verify_client, the access log says 400
    is($t->logged_status($r->{uri}), 400, "$name: access log 400");

    $reason = '' unless defined $reason;

    if ($log_re) {
        like($r->{log}, $log_re, "$name: error.log says $code");
        return;
    }

    my @d = grep { $_->{code} eq $code } decision_lines($r->{log});
    ok(@d == 1 && $d[0]{reason} =~ /^$reason/,
       "$name: error.log says $code" . ($reason ? ' and the reason' : ''))
        or diag($r->{log});
}

###############################################################################
# genuine devices

for my $v ('TLSv1_2', 'TLSv1_3') {
    my $r = get(device => 'dev1', ssl_version => $v);
    is($r->{ssl_version}, $v, "dev1 $v: protocol");
    identity_ok($r, "dev1 $v", 'dev1', 'signer1');
}

identity_ok(get(device => 'dev2'), 'dev2', 'dev2', 'signer1');
identity_ok(get(device => 'dev3'), 'dev3 via signer2', 'dev3', 'signer2');
identity_ok(get(device => 'dev_noexpiry'), 'no-expiry device with SAN',
            'dev_noexpiry', 'signer1');

my $r = get(device => 'dev_tng');
identity_ok($r, 'Trust&GO "<hex> ATECC" CN', 'dev_tng', 'signer1');
is_deeply([upstream_values($r, 'X-Device-Serial')], ['0123C0C1C2C3C4C501'],
          'Trust&GO CN: serial upper-cased');

identity_ok(get(device => 'dev1', cert => $t->pki_file('dev1.fullchain.pem'),
                key => $t->pki_file('dev1.key')),
            'chain with the pinned root', 'dev1', 'signer1');

# the device sends only its leaf

denied(get(device => 'dev1', leaf_only => 1), 495,
       'leaf only, no signers pinned', 'chain does not end in a pinned root');

for my $v ('TLSv1_2', 'TLSv1_3') {
    identity_ok(get(port => $port{1}, device => 'dev1', leaf_only => 1,
                    ssl_version => $v),
                "leaf only, signers pinned, $v", 'dev1', 'signer1');
}

identity_ok(get(port => $port{1}, device => 'dev3', leaf_only => 1),
            'leaf only via signer2, signers pinned', 'dev3', 'signer2');
identity_ok(get(port => $port{1}, device => 'dev1'),
            'chain sent, signers pinned', 'dev1', 'signer1');

###############################################################################
# unpinned root, unpinned signer

denied(get(device => 'dev_rogue'), 495, 'unpinned root',
       'chain does not end in a pinned root');
denied(get(device => 'dev_rogue', cert => $t->pki_file(
               'dev_rogue.fullchain.pem'), key => $t->pki_file('dev_rogue.key')),
       495, 'unpinned root sent along',
       '(chain ends in an unpinned root|chain longer than the verify depth)');
denied(get(port => $port{1}, device => 'dev_rogue'), 495,
       'unpinned root, signers pinned', 'signer not pinned');
identity_ok(get(port => $port{5}, device => 'dev_rogue'),
            'rogue chain with its root pinned too', 'dev_rogue',
            'rogue_signer');

$r = get(port => $port{1}, device => 'dev_unpinned_signer');
denied($r, 495, 'unpinned signer, signers pinned', 'signer not pinned');
is_deeply([map { join '|', @$_{qw(code status claimed_serial subject location)},
                  $_->{reason} =~ /^(signer not pinned)/ }
           decision_lines($r->{log})],
          ['495|invalid|0123D0D1D2D3D4D501|CN=sn0123D0D1D2D3D4D501,O=Device Auth Test Inc|127.0.0.1|signer not pinned'],
          'unpinned signer: log line names serial (as claimed) and subject');

# a self-signed certificate that claims a real device's serial: the log
# line does not name it as the device's (issue 9, item 10)
{
    my $dir = $t->testdir;
    my $cn = 'sn' . $t->serial('dev1');
    system('openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
           'ec_paramgen_curve:P-256', '-nodes', '-keyout', "$dir/self.key",
           '-out', "$dir/self.pem", '-days', '30', '-subj', "/CN=$cn") == 0
        or die "openssl req -x509 failed";

    $r = get(cert => "$dir/self.pem", key => "$dir/self.key");
    denied($r, 495, 'self-signed, a real serial claimed',
           'chain ends in an unpinned root');
    my ($d) = decision_lines($r->{log});
    is(join('|', @$d{qw(code claimed_serial subject)}),
       "495|${\ $t->serial('dev1')}|CN=$cn",
       'self-signed: the serial is logged as claimed');
    ok(!exists $d->{serial}, 'self-signed: never as the serial of the device');
}

identity_ok(get(device => 'dev_unpinned_signer'),
            'unpinned signer chaining to the pinned root, no signers pinned',
            'dev_unpinned_signer', 'signer3');

###############################################################################
# validity, profile

denied(get(device => 'dev_expired'), 495, 'expired',
       'device certificate expired');
denied(get(device => 'dev_future'), 495, 'not yet valid',
       'device certificate not yet valid');
denied(get(device => 'dev_rsa'), 495, 'RSA key',
       'key type RSA-2048 not allowed by profile atecc608');

for my $v ('TLSv1_2', 'TLSv1_3') {
    $r = get(device => 'dev_p384', ssl_version => $v);
    denied($r, 495, "P-384 key $v",
           'curve secp384r1 not allowed by profile atecc608');
    like($r->{log}, qr/ claimed_serial="0123F2F2F2F2F2F201" subject="CN=sn0123F2F2F2F2F2F201,O=Device Auth Test Inc"/,
         "P-384 key $v: log names serial and subject");
}

denied(get(device => 'dev_sha384'), 495, 'SHA-384 signature',
       'signature algorithm ecdsa-with-SHA384 not allowed by profile atecc608');
$r = get(device => 'dev_badcn');
denied($r, 495, 'CN device-42', 'subject CN "device-42" does not match');
like($r->{log}, qr/device rejected: code=495 status=invalid subject="CN=device-42,/,
     'CN device-42: no serial in the log line');
denied(get(device => 'dev_ca'), 495, 'CA:TRUE device',
       'device certificate is a CA');

# CN with CR LF and a header line

$r = get(device => 'dev_inject');
denied($r, 495, 'CN with CR LF', 'subject CN ".*" does not match');
unlike($r->{log}, qr/\r/, 'CN with CR LF: no CR in error.log');
like($r->{log}, qr/device rejected: code=495 [^\n]*X-Injected: 1[^\n]* reason="[^\n]*X-Injected/,
     'CN with CR LF: one log line, escaped');
unlike($r->{log}, qr/^X-Injected/m, 'CN with CR LF: no log line injected');
ok(!exists $r->{headers}{'x-injected'}, 'CN with CR LF: no injected header');

$r = get(device => 'dev_inject', path => '/errpage');
like($r->{body}, qr/^denied /, 'CN with CR LF, error_page: the page');
ok(!exists $r->{headers}{'x-injected'},
   'CN with CR LF, reason in a response header: no header injected');
like($r->{headers}{'x-reason'} || '', qr/^subject CN "sn0123A1B2C3D4E5F6A7\\x0D\\x0AX-Injected: 1" does not match/,
     'CN with CR LF: $device_auth_reason escaped');
unlike($r->{raw}, qr/\r\nX-Injected/i, 'CN with CR LF: raw response clean');

$r = get(port => $port{3}, device => 'dev_inject');
denied($r, 495, 'CN with CR LF, profile generic', 'subject CN ".*" is not a valid serial');
unlike($r->{log}, qr/\r|^X-Injected/m, 'CN with CR LF, generic: log clean');

# depth

denied(get(device => 'dev_deep'), 495, 'too deep',
       'chain longer than the verify depth 1 allows');
identity_ok(get(port => $port{2}, device => 'dev_deep'), 'depth 2',
            'dev_deep', 'inter2');
identity_ok(get(port => $port{2}, device => 'dev1'), 'depth 2, normal chain',
            'dev1', 'signer1');
denied(get(device => 'dev1', cert => $t->pki_file('dev1.toolong.pem'),
           key => $t->pki_file('dev1.key')), 495, '4 certificates sent',
       'device sent 4 certificates, at most 3 allowed');

###############################################################################
# no certificate

for my $v ('TLSv1_2', 'TLSv1_3') {
    denied(get(ssl_version => $v), 496, "no certificate $v",
           'no client certificate');
}

$r = get(plain => 1, port => $port{6});
denied($r, 496, 'plain HTTP', 'plain HTTP connection');

$r = get(path => '/open');
is($r->{status}, 200, 'no certificate, device_auth off: 200');
is(scalar(grep { $_->[0] =~ /^x-device-/i } upstream_headers($r)), 0,
   'no certificate, device_auth off: no identity headers');

$r = get(path => '/open', device => 'dev1');
is($r->{status}, 200, 'device, device_auth off: 200');
is(scalar(grep { $_->[0] =~ /^x-device-/i } upstream_headers($r)), 0,
   'device, device_auth off: no identity headers');

###############################################################################
# error_page, return, rewrite, variables

# as for nginx's own 495/496, "error_page 495 /uri" answers 400 (nginx sets
# that overwrite for these codes) with the page; "=403" chooses the status

$r = get(path => '/errpage');
is($r->{status}, 400, 'error_page 496: status 400');
like($r->{body}, qr/^denied status=no_cert reason=no client certificate$/m,
     'error_page 496: the page, variables after the redirect');

$r = get(path => '/errpage403');
is($r->{status}, 403, 'error_page 496 =403: 403');
like($r->{body}, qr/^denied status=no_cert reason=no client certificate$/m,
     'error_page 496 =403: the page');
is($t->logged_status($r->{uri}), 403, 'error_page 496 =403: logged 403');

$r = get(path => '/errpage', device => 'dev_expired');
is($r->{status}, 400, 'error_page 495: 400');
like($r->{body}, qr/^denied status=invalid reason=device certificate expired$/m,
     'error_page 495: the page, variables after the redirect');

$r = get(path => '/errpage403', device => 'dev_p384');
is($r->{status}, 403, 'error_page 495 =403: 403');
like($r->{body}, qr/^denied status=invalid reason=curve secp384r1 not allowed by profile atecc608$/m,
     'error_page 495 =403: the page');

$r = get(path => '/errpage', device => 'dev1');
identity_ok($r, 'error_page location, genuine device', 'dev1', 'signer1');

$r = get(path => '/return');
denied($r, 496, 'return without certificate', 'no client certificate');
unlike($r->{body}, qr/^return/, 'return not executed');

denied(get(path => '/return', device => 'dev_badcn'), 495,
       'return with a bad certificate', 'subject CN');

$r = get(path => '/return', device => 'dev1');
is($r->{status}, 200, 'return with a device: 200');
is($r->{body}, 'return ' . $t->serial('dev1') . "\n", 'return: serial');

denied(get(path => '/rewrite'), 496, 'rewrite without certificate');
$r = get(path => '/rewrite', device => 'dev1');
is($r->{status}, 200, 'rewrite with a device: 200');
# the request line the upstream got; its version is proxy_http_version's
# default, 1.0 before nginx 1.29.7 and 1.1 from then on: not the point here
like($r->{headers}{'x-echo-request'},
     qr{^GET /open/rewritten\?case=\d+ HTTP/1\.[01]$},
     'rewrite with a device: rewritten');

$r = get(path => '/vars', device => 'dev1');
is($r->{body}, sprintf("status=ok serial=%s signer=%s fingerprint=%s "
                       . "reason=\n", $t->serial('dev1'),
                       $t->fingerprint('signer1'), $t->fingerprint('dev1')),
   'variables for a genuine device');

# the same in an access log: set and empty for a genuine device (the
# script and log code memcpy() the value: under make test-asan, UBSan
# checks that an empty value does not point to NULL)

my $vars_uri = $r->{uri};
$r = get(path => '/vars');
is($r->{status}, 400, 'variables without a certificate: refused');

my %logged;
for my $i (1 .. 50) {
    %logged = map { /^(\S+) (.*)$/ ? ($1 => $2) : () }
              split /\n/, $t->read_file('vars.log');
    last if exists $logged{ $r->{uri} };
    select(undef, undef, undef, 0.05);
}
is($logged{$vars_uri}, '[ok] []', 'access log: genuine device, empty reason');
is($logged{ $r->{uri} }, '[no_cert] [no client certificate]',
   'access log: no certificate, the reason');

# device_auth_log_level

$r = get(path => '/quiet');
like($r->{log}, qr/\[info\] [^\n]*device rejected: code=496 /,
     'device_auth_log_level info');
$r = get(path => '/loud', device => 'dev_expired');
like($r->{log}, qr/\[error\] [^\n]*device rejected: code=495 /,
     'device_auth_log_level error');
$r = get(path => '/', device => 'dev_expired');
like($r->{log}, qr/\[warn\] [^\n]*device rejected: code=495 /,
     'device_auth_log_level default: warn');

###############################################################################
# profile generic

$r = get(port => $port{3}, device => 'dev_generic');
identity_ok($r, 'profile generic', 'dev_generic', 'signer1');
is_deeply([upstream_values($r, 'X-Device-Serial')], ['meter-0042'],
          'profile generic: serial is the CN');

$r = get(port => $port{3}, device => 'dev1');
is_deeply([upstream_values($r, 'X-Device-Serial')], ['sn0123A1B2C3D4E5F601'],
          'profile generic: ATECC608A device, serial is the whole CN');

$r = get(port => $port{3}, device => 'dev_rsa');
is($r->{status}, 200, 'profile generic: RSA key accepted');

denied(get(port => $port{3}, device => 'dev_rogue'), 495,
       'profile generic: unpinned root', 'chain does not end');
denied(get(port => $port{3}, device => 'dev_expired'), 495,
       'profile generic: expired', 'device certificate expired');

###############################################################################
# with ssl_verify_client: the pins decide, not ssl_client_certificate

identity_ok(get(port => $port{4}, device => 'dev1'),
            'ssl_verify_client optional: pinned device', 'dev1', 'signer1');
# nginx's own ssl_verify_client check sees the module's verdict first
denied(get(port => $port{4}, device => 'dev_rogue'), 495,
       'ssl_verify_client optional: root of ssl_client_certificate', undef,
       qr/device rejected: code=495 status=invalid |client SSL certificate verify error: \(20:/);
denied(get(port => $port{4}, device => 'dev_p384'), 495,
       'ssl_verify_client optional: profile', undef,
       qr/device rejected: code=495 status=invalid |client SSL certificate verify error: \(50:/);
denied(get(port => $port{4}), 496,
       'ssl_verify_client optional, satisfy any: no certificate');

###############################################################################
# keepalive

$r = get(device => 'dev1', keepalive => 30);
my @ok = grep { $_->{status} == 200
                && join(',', upstream_values($_, 'X-Device-Serial'))
                   eq $t->serial('dev1') } @{ $r->{responses} };
is(scalar @ok, 30, 'keepalive: 30 requests, each with one serial');
my %conns = map { join(',', upstream_values($_, 'X-Conn')) => 1 }
            @{ $r->{responses} };
is(scalar keys %conns, 1, 'keepalive: one connection');

$r = get(device => 'dev2', paths => [('/?ka', '/open?ka', '/return?ka') x 5]);
is(scalar(grep { $_->{status} == 200 } @{ $r->{responses} }), 15,
   'keepalive: mixed locations');
is(scalar(grep { upstream_values($_, 'X-Device-Serial') }
           @{ $r->{responses} }), 5,
   'keepalive: identity only where device_auth is on');
is_deeply([ map { $_->{body} } grep { $_->{body} =~ /^return/ }
            @{ $r->{responses} } ],
          [ ('return ' . $t->serial('dev2') . "\n") x 5 ],
          'keepalive: return sees the serial');

$r = get(keepalive => 3);
is($r->{status}, 400, 'keepalive without certificate: 400');

###############################################################################

$t->check_error_log();

done_testing();
