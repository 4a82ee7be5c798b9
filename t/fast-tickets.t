#!/usr/bin/perl

# device_auth_fast_tickets (issue 16): the copy of the session that OpenSSL
# decodes and throws away while it makes a stateless ticket decodes the
# device key with the built-in EC code.  Counted by the metric
# nginx_device_auth_ticket_fast_copies_total: one per ticket of a device
# (TLS 1.3 with 1 and 2 tickets, TLS 1.2, the ticket after a resumption),
# none with the directive off, for a stateful ticket (ssl_session_tickets
# off) or without a client certificate; resumption works either way.  A decoding
# that OpenSSL does not make (DEVICE_AUTH_FAULT=ticket_stateful: the ticket
# turned stateful after the callback) is undone at the connection's close,
# with an alert.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use DeviceAuth::Test qw(upstream_values new_session_cache);

my $t = DeviceAuth::Test->new();

$t->write_ticket_key();

$t->write_conf(<<'EOF');
worker_processes 1;

http {
    ssl_protocols        TLSv1.2 TLSv1.3;
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;
    ssl_session_cache    off;
    ssl_session_tickets  on;
    ssl_session_ticket_key %%TESTDIR%%/ticket.key;

    device_auth_certificate %%PKI%%/roots.pem;

    proxy_set_header X-Reused $ssl_session_reused;

    # the default: on, one ticket
    server {
        listen 127.0.0.1:%%PORT_0%% ssl;

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_1%% ssl;
        device_auth_fast_tickets off;

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_2%% ssl;
        device_auth_tls13_tickets 2;

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }
    }

    # no ticket keys: TLS 1.3 tickets are stateful (the session's id, the
    # session in the cache), no copy is decoded
    server {
        listen 127.0.0.1:%%PORT_3%% ssl;
        ssl_session_cache shared:S:1m;
        ssl_session_tickets off;

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }
    }

    server {
        listen 127.0.0.1:%%PORT_4%%;

        location = /metrics {
            device_auth_metrics;
        }
    }
}
EOF

my $metric = 'nginx_device_auth_ticket_fast_copies_total';

sub copies {
    my $r = $t->http_get(port => $t->port(4), path => '/metrics');
    return $r->{body} =~ /^\Q$metric\E (\d+)$/m ? $1 : undef;
}

# the count reaches what it should once the connections are closed (the
# worker adds it at each close); a count that goes past it stays past it

sub copies_reach {
    my ($want) = @_;
    my $n = copies();
    for (1 .. 50 * $t->{slow}) {
        last if defined $n && $n >= $want;
        select(undef, undef, undef, 0.1);
        $n = copies();
    }
    return $n;
}

sub get {
    my (%a) = @_;
    return $t->https_get(ssl_version => 'TLSv1_3', device => 'dev1', %a);
}

my $dev1 = $t->serial('dev1');

$t->run();

my $base = copies();
is($base, 0, 'the metric is there, 0');

# the default: a ticket per full handshake, its copy the built-in way

for my $n (1 .. 3) {
    my $r = get();
    is($r->{status}, 200, "full handshake $n: 200");
}
is(copies_reach(3), 3, 'default: 3 full handshakes, 3 copies');

# resumption keeps everything, and its new ticket counts too

{
    my $c = new_session_cache();
    my $r = get(session_cache => $c);
    is($r->{status}, 200, 'first connection: 200');

    $r = get(session_cache => $c);
    is($r->{status}, 200, 'resumed: 200');
    is($r->{reused}, 1, 'resumed');
    is_deeply([upstream_values($r, 'X-Reused')], ['r'],
              'resumed, server side');
    is_deeply([upstream_values($r, 'X-Device-Serial')], [$dev1],
              'resumed: the identity');

    $r = get(session_cache => $c);
    is($r->{reused}, 1, 'resumed again, with the ticket of the resumption');

    is(copies_reach(6), 6, 'a full handshake and 2 resumptions: 3 more');
}

# TLS 1.2: its one ticket

{
    my $r = get(ssl_version => 'TLSv1_2');
    is($r->{status}, 200, 'TLS 1.2: 200');
    is($r->{ssl_version}, 'TLSv1_2', 'TLS 1.2');
    is(copies_reach(7), 7, 'TLS 1.2: 1 more');
}

# two tickets: two copies

{
    my $r = get(port => $t->port(2));
    is($r->{status}, 200, 'tickets 2: 200');
    is(copies_reach(9), 9, 'tickets 2: 2 more');
}

# none when off, for early data's stateful tickets, or without a device
# certificate; one connection of the default after them shows that their
# closes added nothing (one worker: closed before the next is served)

{
    my $c = new_session_cache();
    my $r = get(port => $t->port(1), session_cache => $c);
    is($r->{status}, 200, 'off: 200');
    $r = get(port => $t->port(1), session_cache => $c);
    is($r->{reused}, 1, 'off: resumed');
    is_deeply([upstream_values($r, 'X-Device-Serial')], [$dev1],
              'off: resumed, the identity');

    $c = new_session_cache();
    $r = get(port => $t->port(3), session_cache => $c);
    is($r->{status}, 200, 'stateful tickets: 200');
    $r = get(port => $t->port(3), session_cache => $c);
    is($r->{reused}, 1, 'stateful tickets: resumed from the cache');

    $r = $t->https_get(ssl_version => 'TLSv1_3');
    is($r->{status}, 400, 'no certificate: 496, sent as 400');

    $r = get();
    is($r->{status}, 200, 'default again: 200');
    is(copies_reach(10), 10, 'off, stateful, no certificate: none');
    is(copies(), 10, 'and none later');
}

$t->check_error_log();

# a decoding turned on that OpenSSL does not make: off again when the
# connection closes, said in an alert, and the next connection is served

{
    local $ENV{DEVICE_AUTH_FAULT} = 'ticket_stateful';
    $t->run();

    my $mark = $t->log_mark();
    my $r = get();
    is($r->{status}, 200, 'stateful after the callback: 200');

    ok($t->wait_error_log(qr/\[alert\].*device_auth: the built-in EC decoding of a ticket's session copy was still on at the connection close, and is now off/,
                          mark => $mark),
       'stateful after the callback: off at the close, with an alert');

    $r = get(ssl_version => 'TLSv1_2');
    is($r->{status}, 200, 'the next connection: 200');

    $t->stop();
}

done_testing();
