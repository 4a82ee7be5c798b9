#!/usr/bin/perl

# echo.pl PORT [WORKERS [LOG]]: a preforking HTTP/1.x upstream for the suite.
#
# Answers every request with 200 and a text/plain body that lists every
# request header it received, one "Name: value" line each, in the order
# received, names and values exactly as sent.  Response headers:
#   X-Echo: 1                     (the answer came from the upstream)
#   X-Echo-Request: <request line>
#   X-Echo-Body-Length: <bytes of request body read>
# Keep-alive is honoured for HTTP/1.1 requests without "Connection: close".
# With LOG, each request line is appended to that file as it arrives.
# SIGTERM or SIGINT to the parent stops it and its workers.

use strict;
use warnings;

use IO::Socket::INET;
use POSIX ();

my $port = shift or die "usage: echo.pl PORT [WORKERS]\n";
my $nworkers = shift || 4;
my $logfile = shift;

my $server = IO::Socket::INET->new(
    LocalAddr => '127.0.0.1',
    LocalPort => $port,
    Listen    => 128,
    ReuseAddr => 1,
    Proto     => 'tcp',
) or die "echo.pl: cannot listen on 127.0.0.1:$port: $!\n";

my %kids;
my $stopping = 0;

sub stop {
    $stopping = 1;
    kill 'TERM', keys %kids;
}

$SIG{TERM} = \&stop;
$SIG{INT} = \&stop;

for (1 .. $nworkers) {
    spawn();
}

while (%kids) {
    my $pid = waitpid(-1, 0);
    last if $pid < 0;
    delete $kids{$pid};
    spawn() if !$stopping && $pid > 0;
}

exit 0;


sub spawn {
    my $pid = fork();
    die "echo.pl: fork: $!\n" unless defined $pid;

    if ($pid) {
        $kids{$pid} = 1;
        return;
    }

    $SIG{TERM} = 'DEFAULT';
    $SIG{INT} = 'DEFAULT';

    # the parent dies: stop accepting, as nothing will reap us
    my $ppid = getppid();

    while (1) {
        my $client = $server->accept();

        if (!$client) {
            POSIX::_exit(0) if getppid() != $ppid;
            next;
        }

        eval { serve($client) };
        close $client;

        POSIX::_exit(0) if getppid() != $ppid;
    }
}


sub serve {
    my ($c) = @_;
    my $buf = '';

    local $SIG{ALRM} = sub { die "timeout\n" };

    while (1) {
        alarm(30);

        while ($buf !~ /\r?\n\r?\n/) {
            my $n = sysread($c, $buf, 65536, length $buf);
            if (!$n) {
                alarm(0);
                return;
            }
        }

        $buf =~ s/^(.*?)\r?\n\r?\n//s;
        my @lines = split /\r?\n/, $1;
        my $request = shift @lines;

        if ($logfile && open my $log, '>>', $logfile) {
            syswrite $log, "$request\n";
            close $log;
        }

        my @headers;
        my ($length, $close) = (0, 0);
        $close = 1 if $request !~ m{ HTTP/1\.1$};

        for my $line (@lines) {
            my ($name, $value) = $line =~ /^([^:]*):[ \t]*(.*?)[ \t]*$/
                or next;
            push @headers, "$name: $value";
            $length = $value if lc $name eq 'content-length';
            $close = 1 if lc $name eq 'connection' && $value =~ /close/i;
            $close = 0 if lc $name eq 'connection' && $value =~ /keep-alive/i;
        }

        while (length $buf < $length) {
            my $n = sysread($c, $buf, 65536, length $buf);
            last unless $n;
        }

        my $body_len = length $buf < $length ? length $buf : $length;
        substr($buf, 0, $body_len, '');

        alarm(0);

        my $body = join('', map { "$_\n" } @headers);

        my $response = "HTTP/1.1 200 OK\r\n"
            . "Content-Type: text/plain\r\n"
            . "Content-Length: " . length($body) . "\r\n"
            . "X-Echo: 1\r\n"
            . "X-Echo-Request: $request\r\n"
            . "X-Echo-Body-Length: $body_len\r\n"
            . "Connection: " . ($close ? "close" : "keep-alive") . "\r\n"
            . "\r\n" . $body;

        my $off = 0;
        while ($off < length $response) {
            my $n = syswrite($c, $response, length($response) - $off, $off);
            return unless $n;
            $off += $n;
        }

        return if $close;
    }
}
