"""Lightning callbacks that cnnlab adds to the ones Lightning ships."""
