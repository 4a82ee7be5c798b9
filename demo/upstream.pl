#!/usr/bin/perl

# upstream.pl PORT: the demo's upstream, a separate process on 127.0.0.1.
#
# Answers every request with 200 and a text/plain body that lists the
# identity headers it received: every header whose name starts with
# "X-Device" (in any case, with "-" or "_"), exactly as received, one
# "Name: value" line each.  It runs outside the demo nginx on purpose:
# device_auth strips client X-Device-* headers in every server of the nginx
# that loads it, so an upstream inside that nginx would see nothing.
#
# One child per connection, "Connection: close".  SIGTERM or SIGINT stops it.

use strict;
use warnings;

use IO::Socket::INET;
use POSIX ();

my $port = shift or die "usage: upstream.pl PORT\n";

my $server = IO::Socket::INET->new(
    LocalAddr => '127.0.0.1',
    LocalPort => $port,
    Listen    => 64,
    ReuseAddr => 1,
    Proto     => 'tcp',
) or die "upstream.pl: cannot listen on 127.0.0.1:$port: $!\n";

$SIG{CHLD} = 'IGNORE';
$SIG{TERM} = $SIG{INT} = sub { exit 0 };

while (1) {
    my $client = $server->accept() or next;
    my $pid = fork();

    if (!defined $pid) {
        close $client;
        next;
    }

    if ($pid == 0) {
        $SIG{TERM} = $SIG{INT} = 'DEFAULT';
        close $server;
        eval { serve($client) };
        close $client;
        POSIX::_exit(0);
    }

    close $client;
}


sub serve {
    my ($c) = @_;
    my $buf = '';

    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm(10);

    while ($buf !~ /\r?\n\r?\n/) {
        my $n = sysread($c, $buf, 16384, length $buf);
        return unless $n;
        return if length $buf > 65536;
    }

    alarm(0);

    my ($head) = $buf =~ /^(.*?)\r?\n\r?\n/s;
    my @lines = split /\r?\n/, $head;
    my $request = shift @lines;

    my @seen;

    for my $line (@lines) {
        my ($name, $value) = $line =~ /^([^:]*):[ \t]*(.*?)[ \t]*$/ or next;
        push @seen, "$name: $value" if $name =~ /^x[-_]device/i;
    }

    my $body = @seen ? join('', map { "$_\n" } @seen)
                     : "(no X-Device-* header)\n";

    my $response = "HTTP/1.1 200 OK\r\n"
        . "Content-Type: text/plain\r\n"
        . "Content-Length: " . length($body) . "\r\n"
        . "X-Demo-Upstream: 1\r\n"
        . "Connection: close\r\n"
        . "\r\n" . $body;

    my $off = 0;

    while ($off < length $response) {
        my $n = syswrite($c, $response, length($response) - $off, $off);
        return unless $n;
        $off += $n;
    }
}
