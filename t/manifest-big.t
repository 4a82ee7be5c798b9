#!/usr/bin/perl

# device-auth import-manifest at size, against a real redis-server:
#
# - a manifest of 100,000 entries (about 370 MB, laid out as Microchip's),
#   made once by make into build/t-manifest (t/lib/mkmanifest.sh with
#   build/tools/manifest-gen; DEVICE_AUTH_MANIFEST names it), or here when
#   that is not set: every entry registered, with its key, the progress
#   reported, and the memory the size of the file plus a bounded amount;
# - a 100 MB file whose middle entry is one 100 MB string: refused as too
#   large, the entries around it registered.
#
# The time it takes is printed (docs/performance.md), never asserted.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Spec;
use POSIX ();
use Test::More;
use DeviceAuth::Test;
use DeviceAuth::Manifest;

my $t = DeviceAuth::Test->new();
my $pki = $t->pki;
my $N = 100000;

my $time_bin = '/usr/bin/time';
plan(skip_all => "$time_bin (Debian package \"time\") is needed")
    unless -x $time_bin;

my $dir = $ENV{DEVICE_AUTH_MANIFEST}
          && File::Spec->rel2abs($ENV{DEVICE_AUTH_MANIFEST});

unless ($dir) {
    $dir = $t->testdir . '/t-manifest';
    note("generating a manifest of $N entries into $dir");
    system('bash', DeviceAuth::Test->repo . '/t/lib/mkmanifest.sh', $dir,
           $pki, $N) == 0 or die 'mkmanifest.sh failed (make tools?)';
}

my $port = $t->redis_start();

# device-auth under /usr/bin/time: (exit code, stdout, stderr, max RSS KB)
sub timed_import {
    my (@args) = @_;
    my $td = $t->testdir;

    my $pid = fork();
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$td/import.out";
        open STDERR, '>', "$td/import.err";
        { no warnings 'exec';
          exec $time_bin, '-f', 'maxrss=%M', '-o', "$td/import.time",
               $t->cli_binary, 'import-manifest', '--redis',
               "127.0.0.1:$port", @args; }
        POSIX::_exit(127);
    }

    waitpid($pid, 0);
    my $rc = $? >> 8;
    my ($rss) = $t->read_file("$td/import.time") =~ /maxrss=(\d+)/;

    return ($rc, $t->read_file("$td/import.out"),
            $t->read_file("$td/import.err"), $rss);
}


###############################################################################
# 100,000 entries

my $file = "$dir/manifest.json";
my $size = -s $file;
ok($size > 100 * 1024 * 1024, "the manifest is over 100 MB ($size bytes)");

my ($rc, $out, $err, $rss) = timed_import('--roots', "$pki/roots.pem",
    '--log-signers', "$dir/log-signer.pem", '--quiet', $file);

is($rc, 0, "$N entries: exit 0") or diag($out, $err);
is($out, "summary: $N entries in 1 file, $N registered, 0 already "
         . "registered, 0 kept with another value, 0 replaced, 0 rejected\n",
   "$N entries: all registered, --quiet prints only the summary");
is($t->redis_cli('DBSIZE'), $N, "$N entries: $N keys in Redis");

# progress: a line every 10%, then the total
my @progress = $err =~ /^verifying: (\d+)\/$N entries \((\d+)%\)$/mg;
my @pct = @progress[grep { $_ % 2 } 0 .. $#progress];
is(scalar @pct, 9, 'progress: a line per 10%') or diag($err);
is_deeply(\@pct, [sort { $a <=> $b } @pct], 'progress: increasing');
my ($secs, $rate, $cpu) = $err =~ /^verified $N entries in ([\d.]+) s by \d+ process(?:es)? \((\d+) entries\/s\), ([\d.]+) s of CPU$/m;
ok(defined $secs, 'progress: how long it took, and the CPU') or diag($err);
my ($read) = $err =~ /^read $N entries \([\d.]+ MB\) in ([\d.]+) s$/m;
my ($write) = $err =~ /^redis: $N verified entries written in ([\d.]+) s /m;
ok(defined $read && defined $write, 'progress: the read and the writes')
    or diag($err);
diag("$N entries: read in $read s, verified in $secs s ($rate entries/s, "
     . "$cpu s of CPU), written in $write s; max RSS $rss KB");

# the file is mapped, not loaded into a JSON tree: its size and the
# entries' verdicts (well under 1 KB each), not a multiple of it
# (not under ASan: its shadow memory and quarantine are most of the RSS)
SKIP: {
    skip "RSS under $ENV{DEVICE_AUTH_SANITIZER}: not the tool's own", 1
        if $ENV{DEVICE_AUTH_SANITIZER};

    ok($rss * 1024 < $size + 300 * 1024 * 1024,
       "memory: max RSS $rss KB for a file of $size bytes");
}

# a few entries, whose keys manifest-gen wrote down
my @serials = split /\n/, $t->read_file("$file.serials");
is(scalar @serials, $N, 'manifest-gen wrote a line per entry');

for my $i (0, int($N / 2), $N - 1) {
    my ($sn, $spki) = split / /, $serials[$i];
    my $v = $t->redis_cli('GET', "device_auth:{$sn}:registered");
    like($v, qr/ spki_sha256=$spki$/, "entry " . ($i + 1) . ": $sn, its key");
    like($v, qr/^manifest=[0-9a-f]{64} part=ATECC608A-MAH4I /,
         "entry " . ($i + 1) . ": from the manifest");
}


###############################################################################
# 100 MB, one entry of them

$t->redis_cli('FLUSHALL');

my $m = DeviceAuth::Manifest->new($t);
my $log = $m->log_signer('log');
my @dev = map { $t->make_device(name => "big$_",
                                serial => sprintf('0123B1600000000%03X', $_)) }
          1, 2;
my @json = map { $t->read_file($m->write("small$_.json",
                     $m->entry(device => $dev[$_], signer => $log)))
                 =~ s/^\[\n//r =~ s/\n\]\n$//r } 0, 1;

my $huge = $t->testdir . '/huge.json';
open my $fh, '>', $huge or die $!;
print $fh "[\n$json[0],\n{\"payload\": \"";
print $fh 'A' x (1024 * 1024) for 1 .. 100;
print $fh "\", \"protected\": \"e30\", \"signature\": \"\"},\n$json[1]\n]\n";
close $fh;

my $huge_size = -s $huge;
ok($huge_size > 100 * 1024 * 1024, "a file of $huge_size bytes");

($rc, $out, $err, $rss) = timed_import('--roots', "$pki/roots.pem",
    '--log-signers', $log->{cert}, $huge);

is($rc, 1, '100 MB entry: exit 1 (one entry rejected)');
my @lines = split /\n/, $out;
like($lines[0], qr/^\S+:1 0123B1600000000001 registered$/,
     '100 MB entry: the entry before it registered');
like($lines[1], qr/^\S+:2 - rejected: entry is \d+ bytes, at most 65536 allowed$/,
     '100 MB entry: refused for its size, before anything is decoded');
like($lines[2], qr/^\S+:3 0123B1600000000002 registered$/,
     '100 MB entry: the entry after it registered');
note("100 MB entry: max RSS $rss KB");
SKIP: {
    skip "RSS under $ENV{DEVICE_AUTH_SANITIZER}: not the tool's own", 1
        if $ENV{DEVICE_AUTH_SANITIZER};

    ok($rss * 1024 < 4 * $huge_size, "100 MB entry: max RSS $rss KB");
}

done_testing();
