#!/usr/bin/perl

# device_auth_tls13_tickets: the number of TLS 1.3 session tickets a device
# gets (default 1, OpenSSL's 2 for servers without device_auth), counted on
# the client; resumption with one ticket, none possible with 0; the number
# of the server the server name selects on a shared listener; nginx -t
# bounds.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use DeviceAuth::Test qw(upstream_values new_session_cache);

# a client session cache that counts the sessions it is given: one per
# NewSessionTicket in TLS 1.3

package CountingCache;

our @ISA = ('IO::Socket::SSL::Session_Cache');

sub add_session {
    my ($self, $key, $session) = @_;
    $self->{counted}++;
    return $self->SUPER::add_session($key, $session);
}

package main;

my $t = DeviceAuth::Test->new();

$t->write_ticket_key();

# a server: port, server name, device_auth on or not, tickets (undef: the
# default), its own SSL context or http{}'s

sub server {
    my ($port, $name, $device, $tickets, $own_ctx) = @_;

    my @lines = (
        "listen 127.0.0.1:%%PORT_$port%% ssl;",
        $name ? "server_name $name;" : (),
        $own_ctx ? 'ssl_certificate %%PKI%%/server.pem;' : (),
        defined $tickets ? "device_auth_tls13_tickets $tickets;" : (),
        'location / {',
        $device ? '    device_auth on;' : (),
        '    proxy_pass http://%%ECHO%%;',
        '}',
    );

    return "    server {\n" . join('', map { "        $_\n" } @lines)
           . "    }\n";
}

my $conf = <<'EOF' . join('',
http {
    ssl_protocols        TLSv1.2 TLSv1.3;
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;
    ssl_session_cache    off;
    ssl_session_tickets  on;
    ssl_session_ticket_key %%TESTDIR%%/ticket.key;

    device_auth_certificate %%PKI%%/roots.pem;

    proxy_set_header X-Reused $ssl_session_reused;
EOF

    # ports 0, 1, 2: 0, 1, 2 tickets; port 3: the default
    (map { server($_, undef, 1, $_ < 3 ? $_ : undef) } 0 .. 3),

    # no device_auth: OpenSSL's number
    server(4, undef, 0),

    # one listener: the default server without device_auth, a device
    # server with 0 tickets; a device server with 2 as the default of
    # another listener, a server without device_auth there too
    server(5, 'plain.example', 0),
    server(5, 'zero.example', 1, 0, 1),
    server(6, 'two.example', 1, 2),
    server(6, 'plain.example', 0, undef, 1),
) . "}\n";

$t->write_conf($conf);
$t->run();

sub counting_cache {
    my $c = new_session_cache();
    $c->{cache} = CountingCache->new(16);
    return $c;
}

# tickets received on one connection (and its result)
sub tickets {
    my (%a) = @_;
    my $c = $a{session_cache} || counting_cache();
    my $before = $c->{cache}{counted} || 0;
    my $r = $t->https_get(ssl_version => 'TLSv1_3', %a, session_cache => $c);
    return (($c->{cache}{counted} || 0) - $before, $r, $c);
}

my $dev1 = $t->serial('dev1');

for my $case ([0, 0], [1, 1], [2, 2], [3, 1]) {
    my ($p, $n) = @$case;
    my $name = $p == 3 ? 'default' : "tickets $n";

    my ($got, $r, $c) = tickets(port => $t->port($p), device => 'dev1');
    is($r->{status}, 200, "$name: 200");
    is($got, $n, "$name: $n TLS 1.3 tickets on a full handshake");

    ($got, $r) = tickets(port => $t->port($p), device => 'dev1',
                         session_cache => $c);
    is($r->{status}, 200, "$name: second connection 200");
    is_deeply([upstream_values($r, 'X-Device-Serial')], [$dev1],
              "$name: second connection, identity");

    if ($n == 0) {
        is($r->{reused}, 0, "$name: no resumption");
        is_deeply([upstream_values($r, 'X-Reused')], ['.'],
                  "$name: server side, full handshake");
        next;
    }

    is($r->{reused}, 1, "$name: resumed");
    is_deeply([upstream_values($r, 'X-Reused')], ['r'],
              "$name: server side, resumed");
    ok($got >= 1 && $got <= $n,
       "$name: at most $n tickets on a resumed handshake ($got)");

    ($got, $r) = tickets(port => $t->port($p), device => 'dev1',
                         session_cache => $c);
    is($r->{reused}, 1, "$name: resumed again, with the new ticket");
}

# servers without device_auth keep OpenSSL's number
{
    my ($got, $r) = tickets(port => $t->port(4), device => 'dev1');
    is($r->{status}, 200, 'no device_auth: 200');
    is($got, 2, 'no device_auth: OpenSSL\'s 2 tickets');
}

# the server that the server name selects decides, not the default one
{
    my ($got, $r) = tickets(port => $t->port(5), device => 'dev1',
                            sni => 'zero.example', host => 'zero.example');
    is($r->{status}, 200, 'named device server: 200');
    is_deeply([upstream_values($r, 'X-Device-Serial')], [$dev1],
              'named device server: identity');
    is($got, 0, 'named device server: its 0 tickets');

    ($got, $r) = tickets(port => $t->port(5), device => 'dev1',
                         sni => 'plain.example', host => 'plain.example');
    is($got, 2, 'default server without device_auth: 2 tickets');

    ($got, $r) = tickets(port => $t->port(6), device => 'dev1',
                         sni => 'two.example', host => 'two.example');
    is($got, 2, 'default device server: its 2 tickets');

    ($got, $r) = tickets(port => $t->port(6), device => 'dev1',
                         sni => 'plain.example', host => 'plain.example');
    is($r->{status}, 200, 'named server without device_auth: 200');
    is($got, 2, 'named server without device_auth: 2 tickets');
}

# TLS 1.2 is not concerned: one ticket, resumption as before
{
    my $c = counting_cache();
    my ($got, $r) = tickets(port => $t->port(0), device => 'dev1',
                            ssl_version => 'TLSv1_2', session_cache => $c);
    is($r->{status}, 200, 'TLS 1.2, tickets 0: 200');
    ($got, $r) = tickets(port => $t->port(0), device => 'dev1',
                         ssl_version => 'TLSv1_2', session_cache => $c);
    is($r->{reused}, 1, 'TLS 1.2, tickets 0: resumed (TLS 1.2 ticket)');
}

$t->check_error_log();

# nginx -t: the bounds, naming the directive

for my $bad ('3', '-1', 'two') {
    (my $c = $conf) =~ s/device_auth_tls13_tickets 2;/device_auth_tls13_tickets $bad;/g;
    $t->write_conf($c);
    my ($ok, $out) = $t->test_config();
    ok(!$ok, "tickets $bad: nginx -t fails");
    like($out, qr/"device_auth_tls13_tickets"/,
         "tickets $bad: names the directive") or diag($out);
}

{
    (my $c = $conf) =~ s/device_auth_tls13_tickets 2;/device_auth_tls13_tickets 3;/g;
    $t->write_conf($c);
    my ($ok, $out) = $t->test_config();
    like($out, qr/"device_auth_tls13_tickets" must be between 0 and 2/,
         'tickets 3: the bounds');
}

done_testing();
