"""Local chains without Hardhat: a real anvil node and an in-process eth-tester chain behind one
interface. (Being built for issue 3.)"""
