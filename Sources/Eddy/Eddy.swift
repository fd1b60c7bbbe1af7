// The umbrella module for application authors: `import Eddy` brings in the records, serdes
// and log protocols (EddyCore), the state stores (EddyState), the embedded log (EddyLog) and
// the streams DSL and test driver (EddyStreams).
@_exported import EddyCore
@_exported import EddyLog
@_exported import EddyState
@_exported import EddyStreams
