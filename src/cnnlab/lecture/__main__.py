from cnnlab.lecture.run import main

main()
