#!/usr/bin/perl

# A sentinel that says what the test wants (t/sentinel.t):
#
#   fakesentinel.pl PORT DIR LOG
#
# "SENTINEL get-master-addr-by-name <name>" is answered from DIR/master,
# read at each question: "<ip> <port>" (the reply [ip, port]), "nil" (no
# such master), "<host name> <port>" as it is, "error" (an error reply),
# "silent" (no answer at all).  AUTH: +OK, or -WRONGPASS while DIR/wrongpass
# exists.  Other commands: PING (+PONG, or
# ["pong", ""] once subscribed), SUBSCRIBE. When DIR/switch appears, its
# line ("<name> <old ip> <old port> <new ip> <new port>") is published to
# the subscribers of "+switch-master", and the file removed.  Each command
# is appended to LOG as "<connection> <NAME> <first argument>".

use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;

# a client that leaves before its pipelined answers are written (an edge
# refused by AUTH) must not end the sentinel
$SIG{PIPE} = 'IGNORE';

my ($port, $dir, $logfile) = @ARGV;
die "usage: fakesentinel.pl PORT DIR LOG\n" unless $logfile;

my $server = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                   LocalPort => $port, Listen => 16,
                                   ReuseAddr => 1, Proto => 'tcp')
    or die "fakesentinel: listen 127.0.0.1:$port: $!\n";

open my $log, '>>', $logfile or die "fakesentinel: $logfile: $!\n";
$log->autoflush(1);

$SIG{TERM} = $SIG{INT} = sub { exit 0 };

my $sel = IO::Select->new($server);
my %conn;
my $ids = 0;

sub bulk { '$' . length($_[0]) . "\r\n$_[0]\r\n" }

sub slurp {
    open my $fh, '<', $_[0] or return undef;
    local $/;
    my $s = <$fh>;
    close $fh;
    $s =~ s/\s+\z// if defined $s;
    return $s;
}

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

sub handle {
    my ($c, $args) = @_;
    my $name = uc $args->[0];

    print $log "$c->{id} $name " . ($args->[1] // '') . "\n";

    if ($name eq 'AUTH') {
        # a sentinel_password the sentinel refuses, while the file is there
        return "-WRONGPASS invalid username-password pair or user is "
               . "disabled.\r\n" if -e "$dir/wrongpass";
        return "+OK\r\n";
    }

    if ($name eq 'PING') {
        return "*2\r\n" . bulk('pong') . bulk('') if $c->{subscribed};
        return "+PONG\r\n";
    }

    if ($name eq 'SENTINEL') {
        my $m = slurp("$dir/master") // 'nil';

        return "*-1\r\n" if $m eq 'nil';
        return "-ERR no answer today\r\n" if $m eq 'error';

        if ($m eq 'silent') {
            $c->{silent} = 1;
            return '';
        }

        my ($ip, $p) = split ' ', $m;
        return "*2\r\n" . bulk($ip) . bulk($p);
    }

    if ($name eq 'SUBSCRIBE') {
        return '' if $c->{silent};
        $c->{subscribed} = 1;
        return "*3\r\n" . bulk('subscribe') . bulk($args->[1]) . ":1\r\n";
    }

    return "-ERR unknown command '$name'\r\n";
}

while (1) {
    for my $s ($sel->can_read(0.05)) {
        if ($s == $server) {
            my $sock = $server->accept() or next;
            $sel->add($sock);
            $conn{fileno $sock} = { sock => $sock, buf => '', id => ++$ids };
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

    if (-e "$dir/switch") {
        my $m = slurp("$dir/switch");
        unlink "$dir/switch";

        for my $c (grep { $_->{subscribed} } values %conn) {
            syswrite $c->{sock}, "*3\r\n" . bulk('message')
                                 . bulk('+switch-master') . bulk($m);
            print $log "$c->{id} published $m\n";
        }
    }
}
