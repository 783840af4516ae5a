# syntax=docker/dockerfile:1
FROM alpine AS build
RUN <<EOF
apk add --no-cache gcc
echo built > /done
EOF
RUN python3 <<'PY'
print("$HOME stays literal for the shell")
PY
RUN <<A cat > /a && <<B cat > /b
alpha
A
beta
B
COPY <<-EOT /etc/motd
	hello ${USER}
	EOT
COPY <<X <<Y /dest/
x
X
y
Y
CMD ["cat", "/etc/motd"]
