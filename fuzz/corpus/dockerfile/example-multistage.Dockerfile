# multistage: the course's multistage example, offline. `download` makes the
# data files (a local file stands in for the curl download), `production`
# serves /app with busybox httpd, `shell` is an extra target with a shell.
#   berth build -f examples/multistage/Dockerfile --target production -t multistage_example examples/multistage
#   berth run --rm --publish 8000:8000 multistage_example   # then visit http://localhost:8000/
#   berth build -f examples/multistage/Dockerfile --target shell -t multistage_shell examples/multistage
FROM bb AS base

WORKDIR /app/

FROM base AS download
    # This could install compilers or other large build tools
    RUN mkdir -p /tools \
        && echo "a big download tool" > /tools/README \
    && true
    # Use the tools to create datafiles (a local file instead of the download)
    COPY elev_bump_8k.txt ./
    RUN wc -c elev_bump_8k.txt > sizes.txt
    # These derived files can be copied independently of the tools that built them

FROM base AS production
    COPY --from=download /app/ /app/
    EXPOSE 8000
    CMD ["httpd", "-f", "-v", "-p", "8000", "-h", "/app"]

# Extension: extra targets
#   this adds some developer comforts
FROM base AS shell
    COPY --from=download /app/ /app/
    RUN echo 'export PS1="multistage:\w# "' > /root/.profile \
    && true
    CMD ["/bin/sh", "-l"]
