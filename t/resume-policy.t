#!/usr/bin/perl

# A TLS session resumes only where the whole certificate policy that
# accepted the device applies (issue 9, item 2).  Servers share a listener
# and differ in one policy field each: verify depth, pinned roots, pinned
# signers, profile.  A session made on one server and offered with the
# server name of the other must not resume into an identity there: the
# device gets a full handshake, verified against that server's own pins.
# Tickets and the session cache, TLS 1.2 and 1.3, both directions.  A
# resumption that still reaches the other server (the builtin cache, which
# the module cannot inspect) is refused with 495.  Sessions keep resuming
# on their own server with their server name, and after a reload that
# changes a non-default server's policy a device gets a full handshake.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use Test::More;
use DeviceAuth::Test qw(upstream_values new_session_cache);

my $t = DeviceAuth::Test->new();

open my $rnd, '<', '/dev/urandom' or die $!;
read $rnd, my $key, 80;
close $rnd;
$t->write_file('ticket.key', $key);

# one listener per (policy field, session mechanism); server "a" is the
# default server of its listener, "b" is not.  #DEPTH_B# is changed by the
# reload test.
my %field = (
    depth   => ['device_auth_verify_depth 2;', 'device_auth_verify_depth 1;'],
    roots   => ['', 'device_auth_certificate %%PKI%%/roots_both.pem;'],
    signers => ['device_auth_signers %%PKI%%/signers.pem;', ''],
    profile => ['device_auth_profile generic;', ''],
);

# the device each field is about, and who accepts it in a full handshake
my %device = (
    depth   => ['dev_deep', 'a'],              # two intermediates
    roots   => ['dev_rogue', 'b'],             # another company's root
    signers => ['dev_unpinned_signer', 'b'],   # a signer not pinned
    profile => ['dev_generic', 'a'],           # CN "meter-0042"
);

my %mech = (
    ticket => "ssl_session_cache off;\n"
              . "        ssl_session_tickets on;\n"
              . "        ssl_session_ticket_key %%TESTDIR%%/ticket.key;",
    cache  => "ssl_session_cache shared:C_%%NAME%%:1m;\n"
              . "        ssl_session_tickets off;",
    builtin => "ssl_session_cache builtin:1000;\n"
              . "        ssl_session_tickets off;",
);

my @fields = sort keys %field;
my ($servers, $n) = ('', 0);
my %port;

for my $f (@fields) {
    for my $m (sort keys %mech) {
        $port{"$f $m"} = $n;

        for my $s (0, 1) {
            my $name = ('a', 'b')[$s];
            my $pol = $field{$f}[$s];
            $pol = '#DEPTH_B#' if $f eq 'depth' && $s == 1 && $m eq 'ticket';
            (my $sess = $mech{$m}) =~ s/%%NAME%%/$n/;

            $servers .= <<"EOF";
    server {
        listen 127.0.0.1:%%PORT_$n%% ssl;
        server_name $name;
        $sess
        $pol

        location / {
            device_auth on;
            proxy_pass http://%%ECHO%%;
        }
    }

EOF
        }

        $n++;
    }
}

my $template = <<"EOF";
http {
    ssl_protocols        TLSv1.2 TLSv1.3;
    ssl_certificate      %%PKI%%/server.pem;
    ssl_certificate_key  %%PKI%%/server.key;

    device_auth_certificate %%PKI%%/roots.pem;
    device_auth_log_interval 0;    # a line for every decision

$servers}
EOF

sub conf {
    my ($depth_b) = @_;
    (my $c = $template) =~ s/#DEPTH_B#/device_auth_verify_depth $depth_b;/;
    $t->write_conf($c);
}

conf(1);
$t->run();

sub get {
    my (%a) = @_;
    my $name = delete $a{name};
    return $t->https_get(%a, sni => $name, host => $name,
                         session_key => 'one');
}

# full handshakes: each device is accepted by one server only
for my $f (@fields) {
    my ($dev, $ok) = @{ $device{$f} };
    my $p = $t->port($port{"$f ticket"});

    for my $name ('a', 'b') {
        my $r = get(port => $p, device => $dev, name => $name,
                    ssl_version => 'TLSv1_3');
        is($r->{status}, $name eq $ok ? 200 : 400,
           "$f: $dev in a full handshake with server $name");
    }
}

# a session made where the device is accepted, offered to the other server
for my $f (@fields) {
    my ($dev, $ok) = @{ $device{$f} };
    my $other = $ok eq 'a' ? 'b' : 'a';

    for my $m ('ticket', 'cache') {
        for my $v ('TLSv1_2', 'TLSv1_3') {
            my $name = "$f, $m, $v";
            my $p = $t->port($port{"$f $m"});
            my $cache = new_session_cache();
            my %a = (port => $p, device => $dev, ssl_version => $v,
                     session_cache => $cache);

            my $r = get(%a, name => $ok);
            is($r->{status}, 200, "$name: accepted by server $ok");

            $r = get(%a, name => $ok);
            is($r->{reused}, 1, "$name: resumed on server $ok itself");
            is($r->{status}, 200, "$name: resumed on server $ok: 200");

            my $mark = $t->log_mark();
            $r = get(%a, name => $other);

            is($r->{reused}, 0,
               "$name: not resumed with the name of server $other");
            is($r->{status}, 400, "$name: refused by server $other");
            ok(!$r->{headers}{'x-echo'},
               "$name: upstream of server $other not reached");
            like($t->read_error_log($mark), qr/device rejected: code=495/,
                 "$name: the verdict of server $other logged");
        }
    }
}

# the builtin cache is looked up before the module can see the session: a
# session of another policy is resumed by OpenSSL, and refused with 495
for my $v ('TLSv1_2', 'TLSv1_3') {
    my $name = "builtin cache, $v";
    my $p = $t->port($port{'depth builtin'});
    my $cache = new_session_cache();
    my %a = (port => $p, device => 'dev_deep', ssl_version => $v,
             session_cache => $cache);

    my $r = get(%a, name => 'a');
    is($r->{status}, 200, "$name: accepted by server a (depth 2)");

    # TLS 1.2 resumes the session's own server name (server a): the
    # request for server b is then misdirected (421); TLS 1.3 takes the
    # name of the handshake, and server b refuses the session (495)

    my $mark = $t->log_mark();
    $r = get(%a, name => 'b');
    ok(!$r->{headers}{'x-echo'}, "$name: upstream not reached");

    if ($t->nginx_version_at_least('1.29.2')) {
        # from nginx 1.29.2 the server name chooses the server in the
        # ClientHello callback, before OpenSSL looks the session up: it is
        # looked up in server b's cache context and not resumed, and server
        # b verifies the device in a full handshake, as for the others
        is($r->{status}, 400, "$name: full handshake, refused by server b");
        like($t->read_error_log($mark),
             qr/device rejected with 495 .*chain longer than the verify depth 1 allows/,
             "$name: verified against the pins of server b");
    } elsif ($v eq 'TLSv1_2') {
        is($r->{status}, 421, "$name: misdirected");
    } else {
        is($r->{status}, 400, "$name: refused by server b (depth 1)");
        like($t->read_error_log($mark),
             qr/device rejected: code=495 .*resumed session was verified under another certificate policy/,
             "$name: refused for the policy");
    }
}

# a reload that changes the policy of a non-default server: the sessions
# it made get a full handshake (not a refusal) under the new policy

$t->skip_under_valgrind('reloads need the master process');

{
    my $p = $t->port($port{'depth ticket'});
    my $cache = new_session_cache();
    my %a = (port => $p, device => 'dev1', ssl_version => 'TLSv1_3',
             session_cache => $cache);

    my $r = get(%a, name => 'b');
    is($r->{status}, 200, 'reload: dev1 accepted by server b (depth 1)');
    $r = get(%a, name => 'b');
    is($r->{reused}, 1, 'reload: resumed before the reload');

    conf(3);
    ok($t->reload(), 'reload: server b now with depth 3');

    $r = get(%a, name => 'b');
    is($r->{reused}, 0, 'reload: a session of the old policy not resumed');
    is($r->{status}, 200, 'reload: full handshake under the new policy');
    is_deeply([upstream_values($r, 'X-Device-Serial')], [$t->serial('dev1')],
              'reload: identity');

    $r = get(%a, name => 'b');
    is($r->{reused}, 1, 'reload: the new session resumes');
}

$t->check_error_log();

done_testing();
