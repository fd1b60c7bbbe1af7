public enum EddyBenchmarks {}
