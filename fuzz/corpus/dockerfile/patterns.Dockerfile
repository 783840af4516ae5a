ARG V=/usr/local/lib.tar.gz
FROM scratch
ENV A=${V#*/} B=${V##*/} C=${V%.*} D=${V%%.*} E=${V/l/L} F=${V//l/L} G=${V:?set} H=${V:+x}
COPY --chmod=755 <<EOF /x
$V
EOF
