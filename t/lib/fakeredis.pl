#!/usr/bin/perl

# fakeredis.pl PORT MODE LOG [REVOKED...]: a Redis that misbehaves, for
# t/redis-protocol.t.  It speaks enough RESP for the module's handshakes
# (AUTH, SELECT, SCRIPT LOAD with the SHA-1 of the script it was sent,
# CLIENT ID/TRACKING/CACHING, SUBSCRIBE, PING), GET (nothing is there),
# XADD, and answers EVAL/EVALSHA as the module's script would: the serial
# is its first argument, revoked (forever) for the serials given, else not,
# never registered, seen at one place when asked to sight it; SCAN finds
# nothing, PFADD, PFCOUNT and EXPIRE count nothing.  Then MODE:
#
#   normal   nothing more
#   double   every lookup reply is sent twice, in one write
#   late     the first lookup reply of a connection is followed, 300 ms
#            later, by a "+OK" nobody asked for
#   errfirst replies to lookups are held, with every reply after them,
#            until two are pending (or 2 s), then "-ERR extra" is sent
#            before them
#   swap     the same, and the two lookup replies change places
#   garbage  lookups are answered with bytes that are no RESP
#   huge     lookups are answered with "*2147483647\r\n"
#   noselect SELECT is refused ("-ERR DB index is out of range")
#   badpush  SUBSCRIBE is followed by a message of the wrong shape on the
#            invalidation channel (its keys an integer)
#   slowcanary  GET finds the canary (a key ending in ":canary"); its
#            first GET on a connection is answered 1.5 s late, with every
#            reply after it, and SUBSCRIBE 0.3 s late: the subscriber is
#            ready while the command connection still waits for the canary
#
# Each command received is appended to LOG as "<connection> <NAME> <arg>"
# (EVAL and EVALSHA: and what the script is to do, and the serial),
# and "<connection> paired <n>" when held replies are released.

use strict;
use warnings;

use Digest::SHA qw(sha1_hex);
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time);

my ($port, $mode, $logfile, @revoked) = @ARGV;
die "usage: fakeredis.pl PORT MODE LOG [REVOKED...]\n" unless $logfile;

my %revoked = map { $_ => 1 } @revoked;

my $server = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                   LocalPort => $port, Listen => 16,
                                   ReuseAddr => 1, Proto => 'tcp')
    or die "fakeredis: listen 127.0.0.1:$port: $!\n";

open my $log, '>>', $logfile or die "fakeredis: $logfile: $!\n";
$log->autoflush(1);

$SIG{TERM} = $SIG{INT} = sub { exit 0 };

my $sel = IO::Select->new($server);
my %conn;           # fileno => { sock, buf, id, held => [], since, late,
                    #             hold (seconds), delayed => [[at, out]] }
my $ids = 0;

sub bulk { defined $_[0] ? '$' . length($_[0]) . "\r\n$_[0]\r\n" : "\$-1\r\n" }

# the script's reply: serial, fetched, revoked, pttl, registered (its
# value, or nil), sight, places, reason, event, edges, own (0: this fake
# tracks nothing)
sub verdict {
    my ($serial, $what, $type) = @_;
    my $revoked = $revoked{$serial};
    my $sight = ($what =~ /s/ && !$revoked) ? 'ok' : '';

    return "*11\r\n" . bulk($serial) . ':' . ($what =~ /f/ ? 1 : 0) . "\r\n"
           . bulk($revoked ? 'fake revocation' : undef) . ":-1\r\n"
           . bulk(undef) . bulk($sight) . ':' . ($sight ? 1 : 0) . "\r\n"
           . bulk('') . bulk($what eq 'e' ? $type : '') . bulk('') . ":0\r\n";
}

# one command from the buffer, or undef when it is not complete
sub command {
    my ($c) = @_;
    my $buf = \$c->{buf};

    return undef unless $$buf =~ /^\*(\d+)\r\n/;
    my ($n, $pos) = ($1, length($&));
    my @args;

    for (1 .. $n) {
        return undef unless substr($$buf, $pos) =~ /^\$(\d+)\r\n/;
        my $len = $1;
        $pos += length($&);
        return undef if length($$buf) < $pos + $len + 2;
        push @args, substr($$buf, $pos, $len);
        $pos += $len + 2;
    }

    substr($$buf, 0, $pos, '');

    return \@args;
}

# held: [lookup?, reply] in the order of the commands
sub release {
    my ($c) = @_;
    my @r = @{ $c->{held} };
    return unless @r;

    my @lookups = grep { $r[$_][0] } 0 .. $#r;
    print $log "$c->{id} paired " . scalar(@lookups) . "\n";

    if ($mode eq 'swap' && @lookups == 2) {
        my ($a, $b) = @lookups;
        ($r[$a], $r[$b]) = ($r[$b], $r[$a]);
    }

    unshift @r, [0, "-ERR extra\r\n"] if $mode eq 'errfirst';

    syswrite $c->{sock}, join('', map { $_->[1] } @r);
    $c->{held} = [];
    $c->{since} = 0;
}

# a reply, held behind a held lookup reply: replies keep their order
sub reply {
    my ($c, $out) = @_;

    if (@{ $c->{held} }) {
        push @{ $c->{held} }, [0, $out];
        return '';
    }

    return $out;
}

sub handle {
    my ($c, $args) = @_;
    my $name = uc $args->[0];

    print $log "$c->{id} $name " . (defined $args->[1] ? $args->[1] : '')
               . ($name =~ /^EVAL/ ? " $args->[9] $args->[8]" : '') . "\n";

    if ($name eq 'PING') {
        return "*2\r\n" . bulk('pong') . bulk('') if $c->{subscribed};
        return reply($c, "+PONG\r\n");
    }

    if ($name eq 'AUTH') {
        return "+OK\r\n";
    }

    if ($name eq 'CLIENT') {
        my $sub = uc($args->[1] // '');
        return ":$c->{id}\r\n" if $sub eq 'ID';
        return reply($c, "+OK\r\n") if $sub eq 'TRACKING' || $sub eq 'CACHING';
    }

    if ($name eq 'SUBSCRIBE') {
        $c->{subscribed} = 1;
        my $out = "*3\r\n" . bulk('subscribe') . bulk($args->[1]) . ":1\r\n";
        $out .= "*3\r\n" . bulk('message') . bulk($args->[1]) . ":5\r\n"
            if $mode eq 'badpush';

        if ($mode eq 'slowcanary') {
            push @{ $c->{delayed} }, [time() + 0.3, $out];
            return '';
        }

        return $out;
    }

    if ($name eq 'GET' && $mode eq 'slowcanary'
        && ($args->[1] // '') =~ /:canary$/)
    {
        if (!$c->{got}++) {
            push @{ $c->{held} }, [0, bulk('here')];
            $c->{since} = time();
            $c->{hold} = 1.5;
            return '';
        }

        return reply($c, bulk('here'));
    }

    if ($name eq 'GET') {
        return reply($c, bulk(undef));
    }

    if ($name eq 'XADD') {
        return reply($c, bulk('1-0'));
    }

    if ($name eq 'SELECT') {
        return $mode eq 'noselect' ? "-ERR DB index is out of range\r\n"
                                   : "+OK\r\n";
    }

    if ($name eq 'SCRIPT') {
        return bulk(sha1_hex($args->[2]));
    }

    if ($name eq 'SCAN') {
        return reply($c, "*2\r\n" . bulk('0') . "*0\r\n");
    }

    if ($name eq 'PFADD' || $name eq 'PFCOUNT' || $name eq 'EXPIRE') {
        return reply($c, ":0\r\n");
    }

    if ($name eq 'EVAL' || $name eq 'EVALSHA') {
        my $reply = verdict($args->[8] // '', $args->[9] // '',
                            $args->[15] // '');

        return $reply . $reply if $mode eq 'double';
        return "?garbage\r\n" if $mode eq 'garbage';
        return "*2147483647\r\n" if $mode eq 'huge';

        if ($mode eq 'late' && !$c->{late}) {
            $c->{late} = time() + 0.3;
        }

        if ($mode eq 'errfirst' || $mode eq 'swap') {
            push @{ $c->{held} }, [1, $reply];
            $c->{since} ||= time();
            release($c) if grep({ $_->[0] } @{ $c->{held} }) == 2;
            return '';
        }

        return reply($c, $reply);
    }

    return "-ERR unknown command '$name'\r\n";
}

while (1) {
    for my $s ($sel->can_read(0.05)) {
        if ($s == $server) {
            my $sock = $server->accept() or next;
            $sel->add($sock);
            $conn{fileno $sock} = { sock => $sock, buf => '', id => ++$ids,
                                   held => [] };
            next;
        }

        my $c = $conn{fileno $s};
        my $n = sysread $s, my $data, 65536;

        if (!$n) {
            $sel->remove($s);
            delete $conn{fileno $s};
            close $s;
            next;
        }

        $c->{buf} .= $data;

        while (my $args = command($c)) {
            my $out = handle($c, $args);
            syswrite $s, $out if length $out;
        }
    }

    for my $c (values %conn) {
        if ($c->{late} && $c->{late} > 1 && time() >= $c->{late}) {
            syswrite $c->{sock}, "+OK\r\n";
            print $log "$c->{id} sent-late\n";
            $c->{late} = 1;
        }

        for my $d (@{ $c->{delayed} || [] }) {
            next unless $d->[0] && time() >= $d->[0];
            syswrite $c->{sock}, $d->[1];
            $d->[0] = 0;
        }

        if (@{ $c->{held} } && time() - $c->{since} > ($c->{hold} || 2)) {
            printf $log "%d released %.3f\n", $c->{id}, time();
            release($c);
        }
    }
}
