#!/usr/bin/perl

# fakeredis.pl PORT MODE LOG [REVOKED...]: a Redis that misbehaves, for
# t/redis-protocol.t.  It speaks enough RESP for the module's handshake
# (AUTH, SELECT, SCRIPT LOAD with the SHA-1 of the script it was sent,
# PING) and answers EVAL/EVALSHA as the module's script would: the serial is
# taken from the first key ("...{SERIAL}:..."), "revoked" for the serials
# given, else "ok", with the serial as the last element.  Then MODE:
#
#   normal   nothing more
#   double   every lookup reply is sent twice, in one write
#   late     the first lookup reply of a connection is followed, 300 ms
#            later, by a "+OK" nobody asked for
#   errfirst replies to lookups are held until two are pending (or 2 s),
#            then "-ERR extra" is sent before them
#   swap     the same, and the two replies are sent in reverse order
#   garbage  lookups are answered with bytes that are no RESP
#   huge     lookups are answered with "*2147483647\r\n"
#   noselect SELECT is refused ("-ERR DB index is out of range")
#
# Each command received is appended to LOG as "<connection> <NAME> <arg>",
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
my %conn;           # fileno => { sock, buf, id, held => [], since, late }
my $ids = 0;

sub bulk { defined $_[0] ? '$' . length($_[0]) . "\r\n$_[0]\r\n" : "\$-1\r\n" }

sub verdict {
    my ($serial) = @_;
    my @e = $revoked{$serial} ? ('revoked', 'fake revocation')
                              : ('ok', '');
    return "*5\r\n" . bulk($e[0]) . bulk($e[1]) . ":0\r\n" . bulk('')
           . bulk($serial);
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

sub release {
    my ($c) = @_;
    my @r = @{ $c->{held} };
    return unless @r;

    print $log "$c->{id} paired " . scalar(@r) . "\n";
    @r = reverse @r if $mode eq 'swap';
    unshift @r, "-ERR extra\r\n" if $mode eq 'errfirst';

    syswrite $c->{sock}, join('', @r);
    $c->{held} = [];
    $c->{since} = 0;
}

sub handle {
    my ($c, $args) = @_;
    my $name = uc $args->[0];

    print $log "$c->{id} $name " . (defined $args->[1] ? $args->[1] : '')
               . "\n";

    if ($name eq 'AUTH' || $name eq 'PING') {
        return $name eq 'PING' ? "+PONG\r\n" : "+OK\r\n";
    }

    if ($name eq 'SELECT') {
        return $mode eq 'noselect' ? "-ERR DB index is out of range\r\n"
                                   : "+OK\r\n";
    }

    if ($name eq 'SCRIPT') {
        return bulk(sha1_hex($args->[2]));
    }

    if ($name eq 'EVAL' || $name eq 'EVALSHA') {
        my ($serial) = ($args->[3] || '') =~ /\{([^}]*)\}/;
        my $reply = verdict(defined $serial ? $serial : '');

        return $reply . $reply if $mode eq 'double';
        return "?garbage\r\n" if $mode eq 'garbage';
        return "*2147483647\r\n" if $mode eq 'huge';

        if ($mode eq 'late' && !$c->{late}) {
            $c->{late} = time() + 0.3;
        }

        if ($mode eq 'errfirst' || $mode eq 'swap') {
            push @{ $c->{held} }, $reply;
            $c->{since} ||= time();
            release($c) if @{ $c->{held} } == 2;
            return '';
        }

        return $reply;
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

        release($c) if @{ $c->{held} } && time() - $c->{since} > 2;
    }
}
