#!/usr/bin/perl
# reply2bin.pl REPLY.TXT OUTDIR: one seed file per line of reply.txt
# (the notation is described at the top of reply.txt).
use strict;
use warnings;

my ($in, $out) = @ARGV;
die "usage: reply2bin.pl reply.txt outdir\n" unless defined $out;

sub unescape {
    my ($s) = @_;
    $s =~ s/\\(x([0-9a-fA-F]{2})|r|n|"|\\)/
        defined $2 ? chr(hex $2) : $1 eq 'r' ? "\r" : $1 eq 'n' ? "\n" : $1/ge;
    return $s;
}

open(my $fh, '<', $in) or die "$in: $!\n";

while (my $line = <$fh>) {
    chomp $line;
    next if $line =~ /^\s*(#|$)/;

    my ($name, $spec) = $line =~ /^([\w.-]+):\s*(.*)$/
        or die "$in:$.: expected NAME: TOKENS\n";

    my $bin = '';

    if ($spec =~ /^tree\s+(.*)$/) {
        $bin = '#' . join('', map { chr(hex) } split(' ', $1));

    } else {
        while (length $spec) {
            $spec =~ s/^\s+//;
            last unless length $spec;

            if ($spec =~ s/^raw"((?:[^"\\]|\\.)*)"//) {
                $bin .= unescape($1);
            } elsif ($spec =~ s/^"((?:[^"\\]|\\.)*)"//) {
                my $s = unescape($1);
                $bin .= '$' . length($s) . "\r\n$s\r\n";
            } elsif ($spec =~ s/^-(.*)$//) {
                $bin .= "-$1\r\n";
            } elsif ($spec =~ s/^([*:\$+]\S*)//) {
                $bin .= "$1\r\n";
            } else {
                die "$in:$.: cannot read \"$spec\"\n";
            }
        }
    }

    open(my $o, '>', "$out/$name") or die "$out/$name: $!\n";
    binmode $o;
    print $o $bin;
    close $o;
}
