# failing-build: step 3 fails on purpose. berth prints the error with its
# place in this file, the last good step's image ID and the command that
# opens a shell in it (or use --on-failure=shell):
#   berth build -t test examples/failing-build
#   berth run --rm -it <last good ID> sh    # cat test.txt → hello
FROM bb
RUN echo "hello" > test.txt
RUN exit 1
RUN echo "hello2" > test.txt
