#!/usr/bin/perl

# A TCP proxy in front of redis-server for the tests: holdproxy.pl
# LISTEN_PORT REDIS_PORT HOLD_FILE.  What Redis sends to a connection that
# sent SUBSCRIBE (an edge's invalidation subscriber) is held while
# HOLD_FILE exists, and passed on, in order, once it is gone; everything
# else passes at once.  The tests use it to make the subscriber's messages
# reach nginx after the command connection's replies, an order Redis
# alone does not promise either way.

use strict;
use warnings;

use IO::Socket::INET;
use IO::Select;

my ($listen_port, $redis_port, $hold) = @ARGV;

my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                              LocalPort => $listen_port, Listen => 64,
                              ReuseAddr => 1, Proto => 'tcp')
    or die "holdproxy: listen: $!";

my $sel = IO::Select->new($l);
my (%peer, %sub, %held);

sub close_pair {
    my ($s) = @_;
    my $p = delete $peer{$s};
    for my $x ($s, $p ? $p : ()) {
        $sel->remove($x);
        delete $sub{$x};
        delete $held{$x};
        delete $peer{$x};
        close $x;
    }
}

while (1) {
    my $holding = -e $hold;

    # released: what was held goes first
    if (!$holding) {
        for my $c (grep { length $held{$_} } keys %held) {
            my ($s) = grep { "$_" eq $c } $sel->handles;
            next unless $s;
            syswrite($s, $held{$c});
            $held{$c} = '';
        }
    }

    for my $s ($sel->can_read(0.01)) {
        if ($s == $l) {
            my $c = $l->accept or next;
            my $r = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                          PeerPort => $redis_port,
                                          Proto => 'tcp');
            if (!$r) { close $c; next; }
            $peer{$c} = $r;
            $peer{$r} = $c;
            $sub{$r} = 0;
            $sel->add($c, $r);
            next;
        }

        my $n = sysread($s, my $buf, 65536);
        if (!$n) { close_pair($s); next; }

        my $p = $peer{$s} or next;

        if (exists $sub{$s}) {
            # from Redis: held for a subscriber, while the file exists
            if ($sub{$s} && (-e $hold || length($held{$p} // ''))) {
                $held{$p} .= $buf;
                next;
            }
            syswrite($p, $buf);
            next;
        }

        # from the client: a subscriber is known by its SUBSCRIBE
        $sub{$p} = 1 if $buf =~ /SUBSCRIBE/i;
        syswrite($p, $buf);
    }
}
