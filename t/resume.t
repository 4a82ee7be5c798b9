#!/usr/bin/perl

# TLS session resumption keeps the device identity: session IDs in the
# shared cache and session tickets, TLS 1.2 and 1.3; a rejected device
# stays rejected; a session made under other pins is refused.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use DeviceAuth::Test qw(upstream_values upstream_headers new_session_cache);

my $t = DeviceAuth::Test->new();

# one ticket key for the ticket servers, so that a ticket made by one is
# readable by the other
open my $rnd, '<', '/dev/urandom' or die $!;
read $rnd, my $key, 80;
close $rnd;
$t->write_file('ticket.key', $key);

my $conf = <<'EOF';
http {
    ssl_protocols        TLSv1.2 TLSv1.3;
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_log_interval 0;    # a line for every decision

    proxy_set_header X-Reused $ssl_session_reused;

    # session IDs: shared cache, no tickets
    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        ssl_session_cache shared:IDS:1m;
        ssl_session_tickets off;

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }
    }

    # tickets, no cache
    server {
        listen 127.0.0.1:%%PORT_1%% ssl;
        ssl_session_cache off;
        ssl_session_tickets on;
        ssl_session_ticket_key %%TESTDIR%%/ticket.key;

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }
    }

    # pinned signers, both mechanisms
    server {
        listen 127.0.0.1:%%PORT_2%% ssl;
        device_auth_signers %%PKI%%/signers.pem;
        ssl_session_cache shared:SIGNERS:1m;

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }
    }

    # another company's pins, sharing the session cache of server 0
    server {
        listen 127.0.0.1:%%PORT_3%% ssl;
        device_auth_certificate %%PKI%%/root2.pem;
        ssl_session_cache shared:IDS:1m;
        ssl_session_tickets off;

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }
    }

    # another company's pins, sharing the ticket key of server 1
    server {
        listen 127.0.0.1:%%PORT_4%% ssl;
        device_auth_certificate %%PKI%%/root2.pem;
        ssl_session_cache off;
        ssl_session_tickets on;
        ssl_session_ticket_key %%TESTDIR%%/ticket.key;

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }
    }

    # pins from a file the test changes, then reloads: session IDs
    server {
        listen 127.0.0.1:%%PORT_6%% ssl;
        device_auth_certificate %%TESTDIR%%/pins.pem;
        #SIGNERS#
        ssl_session_cache shared:RELOAD:1m;
        ssl_session_tickets off;

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }
    }

    # the same with tickets
    server {
        listen 127.0.0.1:%%PORT_7%% ssl;
        device_auth_certificate %%TESTDIR%%/pins.pem;
        #SIGNERS#
        ssl_session_cache off;
        ssl_session_tickets on;
        ssl_session_ticket_key %%TESTDIR%%/ticket.key;

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }
    }

    # the same pins as server 0, sharing its cache
    server {
        listen 127.0.0.1:%%PORT_5%% ssl;
        ssl_session_cache shared:IDS:1m;
        ssl_session_tickets off;

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }
    }
}
EOF

sub conf {
    my ($signers) = @_;
    (my $c = $conf) =~ s/#SIGNERS#/$signers ? "device_auth_signers $signers;"
                                             : ''/ge;
    $t->write_conf($c);
}

conf(undef);
$t->write_file('pins.pem', $t->read_file($t->pki_file('roots.pem')));

$t->run();

sub identity {
    my ($r) = @_;
    return join ' ', map { join(',', upstream_values($r, "X-Device-$_")) }
                     qw(Serial Signer Fingerprint Status);
}

my $dev1 = join ' ', $t->serial('dev1'), $t->fingerprint('signer1'),
                     $t->fingerprint('dev1'), 'ok';

my %mode = (0 => 'session ID', 1 => 'ticket', 2 => 'signers pinned');

for my $p (0, 1, 2) {
    for my $v ('TLSv1_2', 'TLSv1_3') {
        my $name = "$mode{$p} $v";
        my $cache = new_session_cache();
        my %a = (port => $t->port($p), device => 'dev1', ssl_version => $v,
                 session_cache => $cache, leaf_only => $p == 2);

        my $r = $t->https_get(%a);
        is($r->{status}, 200, "$name: first connection 200");
        is($r->{reused}, 0, "$name: first connection, full handshake");
        is(identity($r), $dev1, "$name: first connection identity");
        is_deeply([upstream_values($r, 'X-Reused')], ['.'],
                  "$name: first connection, server side not reused");

        for my $n (2, 3) {
            $r = $t->https_get(%a);
            is($r->{status}, 200, "$name: connection $n 200");
            is($r->{reused}, 1, "$name: connection $n resumed the session");
            is_deeply([upstream_values($r, 'X-Reused')], ['r'],
                      "$name: connection $n, server side reused");
            is(identity($r), $dev1, "$name: connection $n same identity");
            is(scalar(grep { $_->[0] =~ /^x-device-/i } upstream_headers($r)),
               4, "$name: connection $n, 4 identity headers");
        }

        $r = $t->https_get(%a, keepalive => 5);
        is($r->{reused}, 1, "$name: keepalive connection resumed");
        is(scalar(grep { identity($_) eq $dev1 } @{ $r->{responses} }), 5,
           "$name: 5 requests on the resumed connection, same identity");
    }
}

# a second device's session does not mix with the first one's

{
    my $c1 = new_session_cache();
    my $c2 = new_session_cache();

    for (1 .. 2) {
        my $r1 = $t->https_get(device => 'dev1', session_cache => $c1);
        my $r2 = $t->https_get(device => 'dev2', session_cache => $c2);
        is_deeply([upstream_values($r1, 'X-Device-Serial')],
                  [$t->serial('dev1')], "dev1 round $_");
        is_deeply([upstream_values($r2, 'X-Device-Serial')],
                  [$t->serial('dev2')], "dev2 round $_");
    }
}

# rejected devices stay rejected, resumed or not

for my $p (0, 1) {
    for my $v ('TLSv1_2', 'TLSv1_3') {
        for my $dev ('dev_badcn', 'dev_expired', undef) {
            my $name = "$mode{$p} $v " . ($dev || 'no certificate');
            my $cache = new_session_cache();
            my %a = (port => $t->port($p), ssl_version => $v,
                     session_cache => $cache, $dev ? (device => $dev) : ());

            for my $n (1 .. 3) {
                my $mark = $t->log_mark();
                my $r = $t->https_get(%a);
                is($r->{status}, 400, "$name: connection $n, 400");
                ok(!$r->{headers}{'x-echo'}, "$name: connection $n, "
                   . "upstream not reached");
                like($t->read_error_log($mark),
                     qr/device rejected: code=${\($dev ? 495 : 496)} /,
                     "$name: connection $n, "
                     . ($r->{reused} ? 'resumed' : 'full handshake')
                     . ', logged');
            }
        }
    }
}

# a session made where other pins apply is refused (not resumed into 200)

for my $case ([0, 3, 'session ID'], [1, 4, 'ticket']) {
    my ($from, $to, $mech) = @$case;

    for my $v ('TLSv1_2', 'TLSv1_3') {
        my $name = "$mech $v, other pins";
        my $cache = new_session_cache();

        my $r = $t->https_get(port => $t->port($from), device => 'dev1',
                              ssl_version => $v, session_cache => $cache,
                              session_key => 'shared');
        is($r->{status}, 200, "$name: made where pinned");

        my $mark = $t->log_mark();
        $r = $t->https_get(port => $t->port($to), device => 'dev1',
                           ssl_version => $v, session_cache => $cache,
                           session_key => 'shared');
        is($r->{status}, 400, "$name: refused where not pinned");
        ok(!$r->{headers}{'x-echo'}, "$name: upstream not reached");

        my $log = $t->read_error_log($mark);
        if ($r->{reused}) {
            like($log, qr/rejected: code=495 [^\n]* reason="resumed session was verified against a trust anchor that is not pinned here/,
                 "$name: resumed, refused for its anchor");
        } else {
            like($log, qr/rejected: code=495 [^\n]* reason="chain does not end in a pinned root/,
                 "$name: full handshake, refused for its chain");
        }
    }
}

# same pins, same cache: the session is good in both servers

{
    my $cache = new_session_cache();
    my $r = $t->https_get(port => $t->port(0), device => 'dev1',
                          session_cache => $cache, session_key => 'same');
    is($r->{status}, 200, 'same pins: first server');

    $r = $t->https_get(port => $t->port(5), device => 'dev1',
                       session_cache => $cache, session_key => 'same');
    is($r->{status}, 200, 'same pins: second server');
    is(identity($r), $dev1, 'same pins: identity in the second server'
       . ($r->{reused} ? ' (resumed)' : ''));
}

# a device certificate that expires while its session lives: resumed, it
# is refused for its validity

{
    my $expiry = time() + 3;
    my $dev = $t->make_device(name => 'shortlived',
                              serial => '0123ABCDEF01234567',
                              not_after => $expiry);
    my $id = join ' ', '0123ABCDEF01234567', $t->fingerprint('signer1'),
                       $t->fingerprint($dev), 'ok';
    my %cache;

    for my $p (0, 1) {
        for my $v ('TLSv1_2', 'TLSv1_3') {
            my $c = $cache{"$p $v"} = new_session_cache();
            my $r = $t->https_get(port => $t->port($p), device => $dev,
                                  ssl_version => $v, session_cache => $c);
            is($r->{status}, 200, "$mode{$p} $v: short-lived device, valid");
            is(identity($r), $id, "$mode{$p} $v: short-lived device identity");
        }
    }

    select undef, undef, undef, $expiry + 1.2 - time();

    for my $p (0, 1) {
        for my $v ('TLSv1_2', 'TLSv1_3') {
            my $name = "$mode{$p} $v: expired while its session lives";
            my $mark = $t->log_mark();
            my $r = $t->https_get(port => $t->port($p), device => $dev,
                                  ssl_version => $v,
                                  session_cache => $cache{"$p $v"});
            is($r->{reused}, 1, "$name: resumed");
            is($r->{status}, 400, "$name: refused");
            like($t->read_error_log($mark),
                 qr/rejected: code=495 status=invalid claimed_serial="0123ABCDEF01234567" [^\n]* reason="device certificate expired"/,
                 "$name: expired");
        }
    }

    my $r = $t->https_get(device => $dev);
    is($r->{status}, 400, 'short-lived device, full handshake: refused');
}

# reload: the same pins keep sessions good; other pins refuse them

$t->skip_under_valgrind('reloads need the master process');

{
    my %cache;

    for my $p (6, 7) {
        for my $v ('TLSv1_2', 'TLSv1_3') {
            my $c = $cache{"$p $v"} = new_session_cache();
            my $r = $t->https_get(port => $t->port($p), device => 'dev1',
                                  ssl_version => $v, session_cache => $c);
            is(identity($r), $dev1, "reload $p $v: before");
        }
    }

    ok($t->reload(), 'reload with the same pins');

    for my $p (6, 7) {
        for my $v ('TLSv1_2', 'TLSv1_3') {
            my $r = $t->https_get(port => $t->port($p), device => 'dev1',
                                  ssl_version => $v,
                                  session_cache => $cache{"$p $v"});
            is($r->{reused}, 1, "reload $p $v, same pins: resumed");
            is(identity($r), $dev1, "reload $p $v, same pins: identity");
        }
    }

    # pinned signers added: the device is still accepted, its session made
    # under the roots alone must not lock it out

    conf('%%PKI%%/signers.pem');
    ok($t->reload(), 'reload with signers pinned too');

    for my $p (6, 7) {
        for my $v ('TLSv1_2', 'TLSv1_3') {
            my $name = "reload $p $v, signers pinned too";
            my $r = $t->https_get(port => $t->port($p), device => 'dev1',
                                  ssl_version => $v,
                                  session_cache => $cache{"$p $v"});
            is($r->{status}, 200, "$name: still accepted");
            is(identity($r), $dev1, "$name: identity");

            $r = $t->https_get(port => $t->port($p), device => 'dev1',
                               ssl_version => $v,
                               session_cache => $cache{"$p $v"});
            is($r->{status}, 200, "$name: next connection accepted");
            is($r->{reused}, 1, "$name: next connection resumed");
        }
    }

    # another company's root instead

    conf(undef);
    $t->write_file('pins.pem', $t->read_file($t->pki_file('root2.pem')));
    ok($t->reload(), 'reload with other pins');

    for my $p (6, 7) {
        for my $v ('TLSv1_2', 'TLSv1_3') {
            my $name = "reload $p $v, other pins";
            my $mark = $t->log_mark();
            my $r = $t->https_get(port => $t->port($p), device => 'dev1',
                                  ssl_version => $v,
                                  session_cache => $cache{"$p $v"});
            is($r->{status}, 400, "$name: refused");
            like($t->read_error_log($mark),
                 $r->{reused}
                 ? qr/rejected: code=495 [^\n]*trust anchor that is not pinned here/
                 : qr/rejected: code=495 [^\n]*chain does not end in a pinned root/,
                 "$name: " . ($r->{reused} ? 'resumed' : 'full handshake')
                 . ', logged');
        }
    }
}

$t->check_error_log();

done_testing();
