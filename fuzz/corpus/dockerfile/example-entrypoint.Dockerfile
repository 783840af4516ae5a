# entrypoint: ENTRYPOINT and CMD as the course shows them; arguments given to
# `run` replace CMD and are appended to the ENTRYPOINT.
#   berth build -t entrypoint_example examples/entrypoint
#   berth run --rm entrypoint_example            # ls --help
#   berth run --rm entrypoint_example -la /      # ls -la /
FROM bb
ENTRYPOINT ["ls"]
CMD ["--help"]
